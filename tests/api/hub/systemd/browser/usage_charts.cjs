// Usage over time in a real browser: a person's home page and an admin's page, with a running
// session, at a desktop's width and at a phone's (390 px); a screenshot of each.
//
//   NODE_PATH=.../node_modules node usage_charts.cjs HUB_URL USER PASSWORD ADMIN ADMIN_PASSWORD SHOTS
//
// Driven by tests/api/hub/systemd/test_usage_charts.py. Prints one JSON line with what it saw
// (the test judges it); exits non-zero on a failure to drive the browser.
"use strict";
const { chromium } = require("playwright-core");
const { join } = require("node:path");

const [hubUrl, user, password, admin, adminPassword, shots] = process.argv.slice(2);
const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage",
];
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

// What a chart is to a person and to a screen reader: where it is, and what it says.
async function describeChart(page, id) {
  return page.evaluate((id) => {
    const figure = document.getElementById(id);
    if (!figure) return null;
    const svg = figure.querySelector("svg");
    const box = svg.getBoundingClientRect();
    const named = (attr, el) =>
      (el.getAttribute(attr) || "").split(/\s+/).filter(Boolean)
        .map((ref) => (document.getElementById(ref) || {}).textContent || "").join(" ").trim();
    const line = figure.querySelector("path.line");
    return {
      box: { x: box.x, y: box.y, width: box.width, height: box.height },
      visible: box.width > 0 && box.height > 0 && getComputedStyle(svg).visibility === "visible",
      role: svg.getAttribute("role"),
      svgName: named("aria-labelledby", svg),
      figureName: named("aria-labelledby", figure),
      figureDescription: named("aria-describedby", figure),
      tabindex: figure.getAttribute("tabindex"),
      texts: Array.from(svg.querySelectorAll("text")).map((t) => t.textContent.trim()),
      hasLimit: !!figure.querySelector("line.limit"),
      linePoints: line ? (line.getAttribute("d").match(/[ML]/g) || []).length : 0,
      tableRows: figure.querySelectorAll("details table tbody tr").length,
    };
  }, id);
}

// The ids of the elements Tab reaches, in order, from the top of the page.
async function tabStops(page, count) {
  await page.evaluate(() => { document.activeElement && document.activeElement.blur(); });
  const ids = [];
  for (let i = 0; i < count; i += 1) {
    await page.keyboard.press("Tab");
    ids.push(await page.evaluate(() => document.activeElement && document.activeElement.id));
  }
  return ids;
}

async function logIn(page, name, secret) {
  await page.goto(`${hubUrl}/hub/login`);
  await page.fill("#username", name);
  await page.fill("#password", secret);
  await page.click("#login-submit");
  await page.waitForURL(`${hubUrl}/hub/home`);
}

async function main() {
  const context = await chromium.launchPersistentContext(process.env.CHROMIUM_PROFILE, {
    executablePath: "/usr/bin/chromium", args: FLAGS, headless: true, viewport: DESKTOP,
  });
  const seen = { errors: [] };
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (message) => {
    if (message.type() === "error" && seen.errors.length < 20) {
      seen.errors.push({ text: message.text().slice(0, 300), url: message.location().url || "" });
    }
  });
  page.on("pageerror", (error) => {
    seen.errors.push({ text: `pageerror: ${String(error).slice(0, 300)}`, url: page.url() });
  });
  try {
    page.setDefaultTimeout(90_000);
    await logIn(page, user, password);
    await page.click("#start");
    // A start from the home page opens JupyterLab by itself once the server is ready.
    await page.waitForURL(`${hubUrl}/user/${user}/lab**`, { timeout: 120_000 });
    // The daemon reads usage every 2 s into 10 s points: wait for three points on the chart.
    const deadline = Date.now() + 90_000;
    for (;;) {
      await page.goto(`${hubUrl}/hub/home`);
      const memory = await describeChart(page, "chart-memory");
      if ((memory && memory.linePoints >= 3) || Date.now() > deadline) break;
      await page.waitForTimeout(3_000);
    }
    seen.home = {
      memory: await describeChart(page, "chart-memory"),
      cpu: await describeChart(page, "chart-cpu"),
      tabStops: await tabStops(page, 25),
      headings: await page.$$eval("h2", (hs) => hs.map((h) => h.textContent.trim())),
    };
    await page.screenshot({ path: join(shots, "usage-home-desktop.png"), fullPage: true });

    await page.setViewportSize(PHONE);
    await page.goto(`${hubUrl}/hub/home`);
    seen.homePhone = {
      memory: await describeChart(page, "chart-memory"),
      cpu: await describeChart(page, "chart-cpu"),
      overflow: await page.evaluate(() => document.documentElement.scrollWidth - innerWidth),
    };
    await page.screenshot({ path: join(shots, "usage-home-phone.png"), fullPage: true });

    await context.clearCookies();
    await page.setViewportSize(DESKTOP);
    await logIn(page, admin, adminPassword);
    await page.goto(`${hubUrl}/hub/admin`);
    seen.admin = {
      host: await describeChart(page, "chart-host-memory"),
      spark: await describeChart(page, `chart-memory-${user}`),
      tabStops: await tabStops(page, 60),
    };
    await page.screenshot({ path: join(shots, "usage-admin-desktop.png"), fullPage: true });
    await page.setViewportSize(PHONE);
    await page.goto(`${hubUrl}/hub/admin`);
    seen.adminPhone = {
      host: await describeChart(page, "chart-host-memory"),
      spark: await describeChart(page, `chart-memory-${user}`),
      overflow: await page.evaluate(() => document.documentElement.scrollWidth - innerWidth),
    };
    await page.screenshot({ path: join(shots, "usage-admin-phone.png"), fullPage: true });
    console.log(JSON.stringify(seen));
  } catch (error) {
    await page.screenshot({ path: join(shots, "usage-failure.png") }).catch(() => {});
    console.log(JSON.stringify(seen));
    throw error;
  } finally {
    await context.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

// Every hub page, as a person and as an admin, at a desktop's width and at a phone's (390 px):
// a screenshot of each, and what a reader needs checked on each: no console error and no
// failed request (a favicon's 404 among them), nothing wider than the screen, a visible focus
// outline when Tab moves through the page, and WCAG contrast (text 4.5:1, input borders and
// focus outlines 3:1) computed from getComputedStyle. Then the behaviours issue 16 asks for:
// another user's Lab refused with a page, a start with immediate feedback, labelled progress
// and its events, JupyterLab opening by itself, its "Hub Control Panel" and "Log Out", the
// logs' filters and in-page follow, the admin table's search, sort and actions on a phone.
//
//   NODE_PATH=.../node_modules node pages.cjs HUB_URL USER PASSWORD ADMIN ADMIN_PASSWORD SHOTS
//
// Driven by tests/api/hub/systemd/test_browser.py; prints one JSON line with what it saw
// (seen.problems: every check that failed, as text) and exits non-zero only if the browser
// itself could not go on.
"use strict";
const { chromium } = require("playwright-core");
const { join } = require("node:path");

const [hubUrl, user, password, admin, adminPassword, shots] = process.argv.slice(2);
const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage",
];
const WIDTHS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const seen = { problems: [], pages: [], events: {} };
const problem = (text) => { if (seen.problems.length < 80) seen.problems.push(text); };

// Runs in the page: contrast of every visible text and of every input's border, WCAG 2.x.
function auditContrast() {
  const parse = (text) => {
    const m = text.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/);
    return m ? [+m[1], +m[2], +m[3], m[4] === undefined ? 1 : +m[4]] : null;
  };
  const luminance = ([r, g, b]) => {
    const lin = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const ratio = (a, b) => {
    const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const over = (top, under) => top[3] >= 1 ? top : [0, 1, 2].map(
    (i) => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  // The colour behind an element: its own background, or its nearest ancestor's.
  const background = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const colour = parse(getComputedStyle(node).backgroundColor);
      if (colour && colour[3] > 0) { layers.push(colour); if (colour[3] >= 1) break; }
    }
    return layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255, 1]);
  };
  const visible = (element) => {
    const box = element.getBoundingClientRect();
    const style = getComputedStyle(element);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && style.opacity !== "0";
  };
  const low = [];
  for (const element of document.body.querySelectorAll("*")) {
    if (!visible(element) || element.closest("[disabled], meter, progress, script, style")) continue;
    const ownText = [...element.childNodes].some(
      (node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
    const back = background(element);
    if (ownText) {
      const fore = over(parse(getComputedStyle(element).color), back);
      const value = ratio(fore, back);
      if (value < 4.5) {
        low.push(`text ${value.toFixed(2)}:1 <${element.tagName.toLowerCase()}> "${element.textContent.trim().slice(0, 40)}"`);
      }
    }
    // Radio buttons and checkboxes have no CSS border to read: Chromium draws their ring
    // itself (#767676 on white, 4.5:1).
    if (element.matches("input:not([type=hidden]):not([type=radio]):not([type=checkbox]), select, textarea")) {
      const style = getComputedStyle(element);
      const border = parse(style.borderTopColor);
      const outside = background(element.parentElement);
      const value = ratio(over(border, outside), outside);
      if (parseFloat(style.borderTopWidth) < 1 || value < 3) {
        low.push(`border ${value.toFixed(2)}:1 <${element.tagName.toLowerCase()} id=${element.id}>`);
      }
    }
  }
  return low;
}

// Runs in the page: the focused element's outline (style, width, contrast with its surroundings).
function focusOutline() {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const style = getComputedStyle(element);
  const parse = (text) => (text.match(/[\d.]+/g) || [0, 0, 0]).slice(0, 3).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  let back = [255, 255, 255];
  for (let node = element.parentElement; node; node = node.parentElement) {
    const colour = getComputedStyle(node).backgroundColor;
    if (colour && !colour.includes("rgba(0, 0, 0, 0)") && colour !== "transparent") { back = parse(colour); break; }
  }
  const [x, y] = [luminance(parse(style.outlineColor)), luminance(back)].sort((p, q) => q - p);
  return {
    what: `<${element.tagName.toLowerCase()}${element.id ? " id=" + element.id : ""}> ${(element.textContent || "").trim().slice(0, 30)}`,
    style: style.outlineStyle,
    width: parseFloat(style.outlineWidth),
    contrast: (x + 0.05) / (y + 0.05),
  };
}

async function check(page, name, width) {
  const where = `${name} @${width}`;
  seen.pages.push(where);
  await page.waitForLoadState("load");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) problem(`${where}: ${overflow} px wider than the screen`);
  for (const low of await page.evaluate(auditContrast)) problem(`${where}: ${low}`);
  // Tab through the first stops: each must show an outline that stands out (3:1).
  await page.evaluate(() => { document.activeElement && document.activeElement.blur(); window.focus(); });
  for (let stop = 0; stop < 6; stop++) {
    await page.keyboard.press("Tab");
    const focus = await page.evaluate(focusOutline);
    if (!focus) continue;
    if (focus.style === "none" || focus.width < 1 || focus.contrast < 3) {
      problem(`${where}: focus outline of ${focus.what} is ${focus.style} ${focus.width}px, ${focus.contrast.toFixed(2)}:1`);
      break;
    }
  }
  await page.screenshot({ path: join(shots, `hub-${name}-${width}.png`), fullPage: true });
}

async function main() {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: FLAGS, headless: true });
  for (const [width, viewport] of Object.entries(WIDTHS)) {
    const context = await browser.newContext({ viewport });
    // A start's progress page is left for JupyterLab as soon as the server is ready: what it
    // showed (its label, its events) is kept in sessionStorage, read back from the Lab's page
    // (same origin). A start that is ready within the form's wait shows no progress at all.
    await context.addInitScript(() => {
      document.addEventListener("DOMContentLoaded", () => {
        const list = document.getElementById("progress-events");
        const bar = document.getElementById("progress-bar");
        if (!list || !bar) return;
        const labelled = bar.getAttribute("aria-labelledby");
        sessionStorage.setItem("progressLabel",
          (labelled && document.getElementById(labelled).textContent.trim()) || bar.getAttribute("aria-label") || "");
        const keep = () => sessionStorage.setItem("progressEvents",
          JSON.stringify([...list.children].map((item) => item.textContent)));
        new MutationObserver(keep).observe(list, { childList: true, subtree: true, characterData: true });
      });
    });
    // Every page of the context is watched: console errors, script errors, failed requests.
    const watch = (page) => {
      page.setDefaultTimeout(60_000);
      // Pages whose own status says "refused" or "not found" on purpose (403, 404, 424):
      // Chromium logs that status as a console error, which is the page's answer, not a fault.
      const refusals = new Set();
      page.on("console", (message) => {
        if (message.type() !== "error") return;
        const from = message.location().url;
        if (refusals.has(from) && message.text().startsWith("Failed to load resource")) return;
        problem(`console error on ${page.url()}: ${message.text().slice(0, 200)} (${from})`);
      });
      page.on("pageerror", (error) => problem(`script error on ${page.url()}: ${String(error).slice(0, 200)}`));
      page.on("requestfailed", (request) => {
        const why = request.failure() ? request.failure().errorText : "";
        // Leaving a page aborts its event streams (progress, follow): not a failure.
        if (!why.includes("ERR_ABORTED")) problem(`request failed: ${request.url()} ${why}`);
      });
      page.on("response", (response) => {
        if (response.status() >= 400 && response.request().resourceType() === "document") {
          refusals.add(response.url());
        }
        // A page's own status may say "refused" (403, 424); anything it loads may not fail.
        if (response.status() >= 400 && response.request().resourceType() !== "document" &&
            !response.url().includes("/user/")) {
          problem(`${response.status()} for ${response.url()}`);
        }
      });
      return page;
    };
    const page = watch(await context.newPage());
    const phone = width === "phone";

    await page.goto(`${hubUrl}/hub/login`);
    await check(page, "login", width);
    await page.fill("#username", user);
    await page.fill("#password", password);
    await page.click("#login-submit");
    await page.waitForURL(`${hubUrl}/hub/home`);
    await check(page, "home-stopped", width);

    // Not running: the person's own Lab while the server is stopped.
    await page.goto(`${hubUrl}/user/${user}/lab`);
    await check(page, "not-running", width);

    // Another user's Lab: a page with the reason and what to do, not a bare JSON body.
    const refusal = await page.goto(`${hubUrl}/user/${admin}/lab`);
    seen.events[`refusal-${width}`] = {
      status: refusal.status(),
      type: refusal.headers()["content-type"] || "",
      heading: await page.locator("h1").first().textContent({ timeout: 2000 }).catch(() => null),
      links: await page.locator("main a").count().catch(() => 0),
    };
    await check(page, "refused", width);

    await page.goto(`${hubUrl}/hub/token`);
    await check(page, "token", width);
    await page.goto(`${hubUrl}/hub/logout`);
    await check(page, "logout", width);

    // A start: feedback at once, then labelled progress with the events, then JupyterLab.
    await page.goto(`${hubUrl}/hub/home`);
    await page.evaluate(() => {
      const form = document.querySelector("#start").form;
      // After hub.js's own listener (registered first), before the page is left: the button's
      // state the moment the click was taken, kept across the navigation.
      form.addEventListener("submit", () => {
        const button = document.querySelector("#start");
        sessionStorage.setItem("afterClick",
          JSON.stringify({ disabled: button.disabled, text: button.textContent.trim() }));
      });
    });
    // The progress stream is held while the progress page is checked (it would leave for
    // JupyterLab as soon as the server is ready), then let go.
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    await page.route("**/server/progress", async (route) => { await held; await route.continue().catch(() => {}); });
    await page.click("#start");
    const pending = await page.waitForSelector("#progress-bar", { timeout: 10_000 }).catch(() => null);
    if (pending) {
      await check(page, "spawn-pending", width);
      // /hub/spawn-pending/<name> (JupyterHub's address for the same), in a second tab with
      // its stream held too: while the server is still starting it is the progress page;
      // once ready it sends the browser to the Lab (then there is nothing to check).
      const other = watch(await context.newPage());
      await other.route("**/server/progress", async (route) => { await held; await route.continue().catch(() => {}); });
      await other.goto(`${hubUrl}/hub/spawn-pending/${user}`);
      seen.events[`spawnPendingPage-${width}`] = other.url().endsWith(`/hub/spawn-pending/${user}`);
      if (seen.events[`spawnPendingPage-${width}`]) await check(other, "spawn-pending-page", width);
      await other.close();
    }
    release();
    const opened = await page.waitForURL(`${hubUrl}/user/${user}/lab**`, { timeout: 120_000 })
      .then(() => true, () => false);
    seen.events[`openedLab-${width}`] = opened;
    await page.unroute("**/server/progress");
    if (!opened) problem(`${width}: JupyterLab did not open by itself (at ${page.url()})`);
    seen.events[`afterClick-${width}`] = await page.evaluate(
      () => JSON.parse(sessionStorage.getItem("afterClick") || "null"));
    seen.events[`progress-${width}`] = await page.evaluate(() => ({
      label: sessionStorage.getItem("progressLabel"),
      events: JSON.parse(sessionStorage.getItem("progressEvents") || "[]"),
    }));

    // JupyterLab's File menu: the way back to the hub and out.
    await page.goto(`${hubUrl}/user/${user}/lab`);
    await page.waitForSelector(".jp-LabShell", { timeout: 120_000 });
    await page.waitForSelector(".jp-Launcher", { timeout: 120_000 });
    if (!phone) {
      await page.click('.lm-MenuBar-itemLabel:text-is("File")');
      const labels = await page.locator(".lm-Menu-itemLabel:visible").allTextContents();
      seen.events.labFileMenu = labels.filter((label) => /Hub|Log Out/.test(label));
      await page.screenshot({ path: join(shots, "jupyterlab-file-menu.png") });
      // "Log Out" leads to the hub's logout page (which asks before it logs out).
      await page.locator('.lm-Menu-itemLabel:text-is("Log Out"):visible').click();
      seen.events.labLogOut = await page.waitForURL(`${hubUrl}/hub/logout`, { timeout: 20_000 })
        .then(() => page.url(), () => page.url());
    }

    // Logs: filters as a form, one timestamp a line, Follow in the page.
    await page.goto(`${hubUrl}/hub/logs/${user}`);
    await check(page, "logs", width);
    seen.events[`logs-${width}`] = await page.evaluate(() => {
      const pre = document.querySelector("#log-lines");
      const first = document.querySelector("#log-lines .log-line, #log-lines li");
      return {
        filters: ["priority", "grep", "since"].filter((name) => document.querySelector(`form [name=${name}]`)),
        followButton: !!document.querySelector("button#follow"),
        wraps: first ? getComputedStyle(first).whiteSpace : null,
        firstLine: first ? first.textContent : (pre ? pre.textContent.split("\n")[0] : null),
      };
    });
    const follow = await page.$("button#follow");
    if (follow) {
      await follow.focus();
      await page.keyboard.press("Enter");  // keyboard usable
      const before = await page.locator("#log-lines .log-line").count();
      // A line the session's log will show: Jupyter logs a 404 as a warning. Asked outside
      // the page (the context's own requests, same cookies): the page's console stays clean.
      await context.request.get(`${hubUrl}/user/${user}/api/no-such-thing-${width}`).catch(() => {});
      await page.waitForFunction((n) => document.querySelectorAll("#log-lines .log-line").length > n,
        before, { timeout: 30_000 }).catch(() => {});
      seen.events[`followGrew-${width}`] = (await page.locator("#log-lines .log-line").count()) - before;
      seen.events[`followStayed-${width}`] = page.url().startsWith(`${hubUrl}/hub/logs/${user}`) &&
        !page.url().includes("/follow");
      seen.events[`followPressed-${width}`] = await follow.getAttribute("aria-pressed");
      await page.keyboard.press("Enter");
    }
    await page.goto(`${hubUrl}/hub/logs/${user}?priority=3&grep=zz-no-such-text&since=1h`);
    seen.events[`logsFiltered-${width}`] = await page.locator("#log-lines .log-line").count();

    await page.goto(`${hubUrl}/hub/home`);
    await check(page, "home-running", width);

    // Log out: the hub's form; then the admin.
    await page.goto(`${hubUrl}/hub/logout`);
    await page.click("main button[type=submit]");
    await page.waitForURL(`${hubUrl}/hub/login`);
    await page.fill("#username", admin);
    await page.fill("#password", adminPassword);
    await page.click("#login-submit");
    await page.waitForURL(`${hubUrl}/hub/home`);
    await page.goto(`${hubUrl}/hub/admin`);
    await check(page, "admin", width);
    seen.events[`admin-${width}`] = await page.evaluate(([person, viewWidth]) => {
      const row = document.getElementById(`user-${person}`);
      const inView = (element) => {
        if (!element) return false;
        const box = element.getBoundingClientRect();
        return box.width > 0 && box.left >= 0 && box.right <= viewWidth;
      };
      return {
        search: !!document.querySelector("#user-search"),
        sort: document.querySelectorAll("#users th button[data-sort]").length,
        stopInView: inView(row && row.querySelector("button[type=submit]")),
        logsInView: inView(row && row.querySelector('a[href^="/hub/logs/"]')),
      };
    }, [user, viewport.width]);
    if (await page.$("#user-search")) {
      await page.fill("#user-search", user);
      seen.events[`adminFiltered-${width}`] = await page.locator("#users tbody tr:visible").count();
      seen.events[`adminRows-${width}`] = await page.evaluate(() => [...document.querySelectorAll("#users tbody tr")]
        .map((row) => `${row.getAttribute("data-user")} hidden=${row.hidden} ${getComputedStyle(row).display}`)
        .concat([document.getElementById("user-search").value, document.getElementById("user-count").textContent]));
      await page.fill("#user-search", "");
      const sorter = page.locator('#users th button[data-sort="user"]');
      if (await sorter.count()) {
        await sorter.click();
        seen.events[`adminSorted-${width}`] = await page.locator("#users th[aria-sort]").count();
      }
    }
    await page.goto(`${hubUrl}/hub/logs/${user}`);
    await check(page, "logs-as-admin", width);
    // An admin stops the person's server from the admin page (at this width).
    await page.goto(`${hubUrl}/hub/admin`);
    await page.locator(`#user-${user} button[type=submit]`).click();
    await page.waitForURL(`${hubUrl}/hub/admin`);
    await page.goto(`${hubUrl}/hub/no-such-page`);
    await check(page, "error-404", width);
    await context.close();
  }
  await browser.close();
  console.log(JSON.stringify(seen));
}

// Run as a script; required (profiles.cjs), it lends its checks: check() screenshots into the
// same SHOTS argument and records into the same seen.problems.
if (require.main === module) {
  main().catch((error) => {
    console.log(JSON.stringify(seen));
    console.error(error);
    process.exit(1);
  });
}
module.exports = { FLAGS, WIDTHS, check, problem, seen };

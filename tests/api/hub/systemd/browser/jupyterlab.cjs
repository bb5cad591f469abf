// A person at a browser: log in through the hub's form, start the server from the home page,
// see JupyterLab open by itself, open it again from the home page and wait for it to load; a screenshot of each step.
//
//   NODE_PATH=.../node_modules node jupyterlab.cjs HUB_URL USER PASSWORD SCREENSHOT_DIR
//
// Driven by tests/api/hub/systemd/test_browser.py. Debian's chromium (/usr/bin/chromium), headless, with
// the flags this machine needs (no sandbox as root, no background network: there is none).
// Prints one JSON line with what it saw; exits non-zero on any failure.
"use strict";
// CommonJS, not ESM: require() honours NODE_PATH, so playwright-core can live in .cache.
const { chromium } = require("playwright-core");
const { join } = require("node:path");

const [hubUrl, user, password, shots] = process.argv.slice(2);
const userDataDir = process.env.CHROMIUM_PROFILE;
const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage",
];

async function main() {
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  args: FLAGS,
  headless: true,
  viewport: { width: 1280, height: 800 },
});
const seen = { console: [] };
const page = context.pages()[0] ?? (await context.newPage());
// Every refused request to the user's server (there should be none once logged in).
seen.refused = [];
page.on("response", (response) => {
  if (response.status() >= 400 && response.url().includes("/user/") && seen.refused.length < 20) {
    seen.refused.push(`${response.status()} ${response.request().method()} ${response.url()}`);
  }
});
page.on("console", (message) => {
  if (message.type() === "error" && seen.console.length < 5) {
    seen.console.push(message.text().slice(0, 300));
  }
});
try {
  page.setDefaultTimeout(90_000);

  await page.goto(`${hubUrl}/hub/login`);
  await page.fill("#username", user);
  await page.fill("#password", password + "-wrong");
  await page.click("#login-submit");
  seen.wrongPassword = (await page.textContent("#login-message")).trim();
  await page.fill("#password", password);
  await page.click("#login-submit");
  await page.waitForURL(`${hubUrl}/hub/home`);
  await page.screenshot({ path: join(shots, "hub-home.png"), fullPage: true });

  await page.click("#start");
  // The home page shows progress (hub.js over the SSE endpoint) and opens JupyterLab by
  // itself when it is ready (issue 16).
  await page.waitForURL(`${hubUrl}/user/${user}/lab**`, { timeout: 120_000 });
  await page.goto(`${hubUrl}/hub/home`);
  seen.stateAfterStart = (await page.textContent("#server-state")).trim();
  await page.screenshot({ path: join(shots, "hub-running.png"), fullPage: true });

  await page.click("#open-lab");
  await page.waitForURL(`${hubUrl}/user/${user}/lab**`);
  await page.waitForSelector(".jp-LabShell", { timeout: 120_000 });
  await page.waitForSelector(".jp-Launcher", { timeout: 120_000 });
  seen.title = await page.title();
  seen.url = page.url();
  await page.screenshot({ path: join(shots, "jupyterlab.png") });

  // The hub's home on a phone's screen: nothing wider than the viewport.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${hubUrl}/hub/home`);
  seen.phoneOverflow = await page.evaluate(
    () => document.documentElement.scrollWidth - window.innerWidth,
  );
  await page.screenshot({ path: join(shots, "hub-phone.png"), fullPage: true });
  console.log(JSON.stringify(seen));
} catch (error) {
  await page.screenshot({ path: join(shots, "failure.png") }).catch(() => {});
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

// An admin at a browser opens a page of another user's server: log in through the hub's form,
// go to PAGE (a path under /user/), and wait for the page's own script to finish; the script
// writes what it managed into document.title as "done:{...}".
//
//   NODE_PATH=.../node_modules node user_page_attack.cjs HUB_URL USER PASSWORD PAGE
//
// Driven by tests/api/hub/systemd/test_user_pages.py. Debian's chromium, headless, with the
// flags jupyterlab.cjs uses. Prints one JSON line (what the page's script saw); exits non-zero
// on any failure.
"use strict";
const { chromium } = require("playwright-core");

const [hubUrl, user, password, target] = process.argv.slice(2);
const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage",
];

async function main() {
  const context = await chromium.launchPersistentContext(process.env.CHROMIUM_PROFILE, {
    executablePath: "/usr/bin/chromium",
    args: FLAGS,
    headless: true,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(90_000);
    await page.goto(`${hubUrl}/hub/login`);
    await page.fill("#username", user);
    await page.fill("#password", password);
    await page.click("#login-submit");
    await page.waitForURL(`${hubUrl}/hub/home`);
    await page.goto(`${hubUrl}${target}`);
    await page.waitForFunction(() => document.title.startsWith("done:"));
    console.log((await page.title()).slice("done:".length));
  } finally {
    await context.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

// An admin at a browser opens a page of another user's server, by its full URL: log in through
// the hub's form at HUB_URL, go to PAGE_URL (with subdomain_host: at the user's own origin,
// through the hub's one-time code), and wait for the page's own script to finish; the script
// writes what it managed into document.title as "done:{...}".
//
//   NODE_PATH=.../node_modules node subdomain_attack.cjs HUB_URL USER PASSWORD PAGE_URL
//
// Driven by tests/api/hub/systemd/test_user_subdomains.py. Debian's chromium, headless, with
// the flags jupyterlab.cjs uses; CHROMIUM_HOST_RULES maps the test's names to 127.0.0.1 (as a
// wildcard DNS record would). Prints one JSON line (what the page's script saw); exits non-zero
// on any failure.
"use strict";
const { chromium } = require("playwright-core");

const [hubUrl, user, password, target] = process.argv.slice(2);
const FLAGS = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage", "--disable-popup-blocking",
  `--host-resolver-rules=${process.env.CHROMIUM_HOST_RULES}`,
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
    await page.goto(target);
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

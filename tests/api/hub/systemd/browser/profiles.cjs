// The start page with [[profile_list]] choices, in Chromium at 1280 and 390 px: the choices a
// person may take with their limits (screenshot hub-home-choices-<width>.png), chosen by
// keyboard (arrow keys in the radio group), started, and shown on the running page
// (hub-home-chosen-running-<width>.png). pages.cjs's checks apply to both pages: no console
// error or failed request, nothing wider than the screen, text contrast, focus outlines.
//
//   NODE_PATH=.../node_modules node profiles.cjs HUB_URL USER PASSWORD - - SHOTS
//
// Driven by tests/api/hub/systemd/test_profiles.py; prints one JSON line with what it saw.
"use strict";
const { chromium } = require("playwright-core");
const { join } = require("node:path");
const { FLAGS, WIDTHS, check, problem, seen } = require(join(__dirname, "pages.cjs"));

const [hubUrl, user, password] = process.argv.slice(2);

async function stateOf(page) {
  return page.locator("#server-state").getAttribute("data-state");
}

async function main() {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: FLAGS, headless: true });
  for (const [width, viewport] of Object.entries(WIDTHS)) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.setDefaultTimeout(60_000);
    page.on("console", (message) => {
      if (message.type() === "error" && !page.url().includes("/user/")) {
        problem(`console error on ${page.url()}: ${message.text().slice(0, 200)}`);
      }
    });
    page.on("pageerror", (error) => problem(`script error on ${page.url()}: ${String(error).slice(0, 200)}`));

    await page.goto(`${hubUrl}/hub/login`);
    await page.fill("#username", user);
    await page.fill("#password", password);
    await page.click("#login-submit");
    await page.waitForURL(`${hubUrl}/hub/home`);
    await check(page, "home-choices", width);
    const choices = await page.$$eval("#profile-choices label.choice", (labels) => labels.map((label) => ({
      slug: label.querySelector("input").value,
      checked: label.querySelector("input").checked,
      text: label.textContent.replace(/\s+/g, " ").trim(),
      // Each choice fits the screen: no label wider than the form.
      fits: label.getBoundingClientRect().right <= document.documentElement.clientWidth,
      // And its words are not squeezed into a sliver beside the radio (12 em at least).
      readable: label.querySelector(".choice-text").getBoundingClientRect().width >=
        12 * parseFloat(getComputedStyle(label).fontSize),
    })));
    seen.events[`choices-${width}`] = choices;

    // By keyboard: focus the checked choice, then an arrow key moves the choice (the first).
    await page.focus("#profile-choices input:checked");
    await page.keyboard.press("ArrowUp");
    seen.events[`picked-${width}`] = await page.$eval("#profile-choices input:checked", (input) => input.value);
    await page.click("#start");
    await page.waitForURL(/\/user\/[^/]+\/lab/, { timeout: 180_000 });
    await page.goto(`${hubUrl}/hub/home`);
    seen.events[`running-${width}`] = {
      state: await stateOf(page),
      profile: await page.locator("#server-profile").getAttribute("data-profile"),
      text: (await page.locator("#server-profile").textContent()).replace(/\s+/g, " ").trim(),
      form: await page.locator("#profile-choices").count(),
    };
    await check(page, "home-chosen-running", width);

    await page.click("#stop");
    await page.waitForURL(`${hubUrl}/hub/home`);
    for (let i = 0; i < 60 && (await stateOf(page)) !== "stopped"; i++) {
      await page.waitForTimeout(500);
      await page.reload();
    }
    seen.events[`stopped-${width}`] = await stateOf(page);
    await context.close();
  }
  await browser.close();
  console.log(JSON.stringify(seen));
}

main().catch((error) => {
  console.log(JSON.stringify(seen));
  console.error(error);
  process.exit(1);
});

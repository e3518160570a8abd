// The sign-in page in a real Chromium against a running server (MDT_E2E_URL), signed in
// with the demo consultant (MDT_E2E_PASSWORD). Started by tests/api.rs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const base = process.env.MDT_E2E_URL;
const password = process.env.MDT_E2E_PASSWORD;

test("signing in shows who you are, a reload keeps you signed in, signing out ends it", async () => {
  assert.ok(base && password, "MDT_E2E_URL and MDT_E2E_PASSWORD must be set");
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage();
    const problems = [];
    page.on("pageerror", (e) => problems.push(String(e)));
    page.on("console", (m) => {
      // A 401 from the silent refresh on first load is expected; anything else
      // (a CSP violation, a script error) is a failure.
      if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push(m.text());
    });

    await page.goto(`${base}/`);
    await page.fill("#email", "consultant@demo.mdt.test");
    await page.fill("#password", "not the right password");
    await page.click("button[type=submit]");
    await page.waitForSelector("#login-error:not([hidden])");
    assert.match(await page.textContent("#login-error"), /incorrect/);
    assert.ok(await page.isHidden("#whoami"));

    await page.fill("#password", password);
    await page.click("button[type=submit]");
    await page.waitForSelector("#whoami:not([hidden])");
    assert.equal(await page.textContent("#me-role"), "consultant");
    assert.equal(await page.textContent("#me-email"), "consultant@demo.mdt.test");
    assert.equal(await page.inputValue("#password"), "", "password cleared after sign-in");
    const cookies = await page.context().cookies();
    const refresh = cookies.find((c) => c.name === "mdt_refresh");
    assert.ok(refresh && refresh.httpOnly && refresh.sameSite === "Strict", JSON.stringify(cookies));
    assert.equal(await page.evaluate(() => document.cookie), "", "script cannot read the refresh cookie");

    // The access token lives in memory only; a reload signs back in through the cookie.
    await page.reload();
    await page.waitForSelector("#whoami:not([hidden])");
    assert.equal(await page.textContent("#me-name"), "Dr Morgan Consultant");

    await page.click("#logout");
    await page.waitForSelector("#login-form:not([hidden])");
    await page.reload();
    await page.waitForLoadState("networkidle");
    assert.ok(await page.isHidden("#whoami"), "signed out stays signed out");

    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

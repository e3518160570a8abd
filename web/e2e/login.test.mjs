// Signing in and out in a real Chromium against a running server (MDT_E2E_URL).
import { test } from "node:test";
import assert from "node:assert/strict";
import { demo, launch, open, password } from "./lib.mjs";

test("signing in shows who you are, a reload keeps you signed in, signing out ends it", async () => {
  const browser = await launch();
  try {
    const page = await open(browser);
    await page.goto("/");
    await page.fill("#email", demo.consultant);
    await page.fill("#password", "not the right password");
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#login-error:not([hidden])");
    assert.match(await page.textContent("#login-error"), /incorrect/);
    assert.ok(await page.isHidden("#whoami"));

    await page.fill("#password", password);
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#whoami:not([hidden])");
    assert.equal(await page.textContent("#me-role"), "consultant");
    assert.equal(await page.textContent("#me-name"), "Dr Morgan Consultant");
    const cookies = await page.context().cookies();
    const refresh = cookies.find((c) => c.name === "mdt_refresh");
    assert.ok(refresh && refresh.httpOnly && refresh.sameSite === "Strict", JSON.stringify(cookies));
    assert.equal(await page.evaluate(() => document.cookie), "", "script cannot read the refresh cookie");

    // The access token lives in memory only; a reload signs back in through the cookie.
    await page.reload();
    await page.waitForSelector("#whoami:not([hidden])");
    assert.equal(await page.textContent("#me-name"), "Dr Morgan Consultant");

    await page.click("#logout");
    await page.waitForSelector("#login-form");
    await page.reload();
    await page.waitForLoadState("networkidle");
    assert.ok(await page.isHidden("#whoami"), "signed out stays signed out");
    assert.ok(await page.isVisible("#login-form"));

    assert.deepEqual(page.problems, []);
  } finally {
    await browser.close();
  }
});

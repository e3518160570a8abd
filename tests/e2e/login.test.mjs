// Signing in and out in a real Chromium against a running server (MDT_E2E_URL).
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertClean, demo, launch, open, password } from "./lib.mjs";

test("signing in shows who you are, a reload keeps you signed in, signing out ends it", async () => {
  const browser = await launch();
  try {
    const page = await open(browser);
    await page.clock.install();
    // A fresh visit asks to be signed back in; with no cookie that is "not signed in",
    // answered without an error status (nothing in the console).
    const firstRefresh = page.waitForResponse((r) => r.url().endsWith("/api/auth/refresh"));
    await page.goto("/");
    assert.equal((await firstRefresh).status(), 204);
    await page.waitForSelector("#login-form");
    await page.fill("#email", demo.consultant);
    await page.fill("#password", "not the right password");
    await page.expectConsole(/status of 401/, "the wrong password is refused with 401, which Chromium logs", async () => {
      await page.click("#login-form button[type=submit]");
      await page.waitForSelector("#login-error:not([hidden])");
    });
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

    // The token is refreshed quietly: before it expires (the page's timer, run on a
    // fake clock), and once more when the server refuses it, retrying the request.
    const refreshed = () => page.waitForResponse((r) => r.url().endsWith("/api/auth/refresh") && r.status() === 200);
    const timed = refreshed();
    await page.clock.fastForward("15:00");
    await timed;
    let refused = false;
    await page.route("**/api/cases?*", (route) => {
      if (refused) return route.continue();
      refused = true;
      return route.fulfill({ status: 401, contentType: "application/json", body: JSON.stringify({ code: "invalid_token", message: "expired" }) });
    });
    const retried = refreshed();
    await page.expectConsole(/status of 401/, "the test answers one request with 401 to provoke the quiet refresh", async () => {
      await page.goto("/#/cases");
      await retried;
      await page.waitForSelector("h1:text('My cases')");
    });
    assert.ok(refused, "the cases request was refused once");
    assert.ok(await page.isHidden("#login-form"), "still signed in");
    assert.equal(await page.isVisible(".error[role=alert]:not([hidden])"), false, "no error shown");
    await page.unroute("**/api/cases?*");

    await page.click("#logout");
    await page.waitForSelector("#login-form");
    await page.reload();
    await page.waitForLoadState("networkidle");
    assert.ok(await page.isHidden("#whoami"), "signed out stays signed out");
    assert.ok(await page.isVisible("#login-form"));

    assert.deepEqual(page.problems, []);
    assertClean(browser);
  } finally {
    await browser.close();
  }
});

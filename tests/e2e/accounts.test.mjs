// The account lifecycle on the admin page against a running demo server (MDT_E2E_URL):
// a coordinator deactivates an account (the person's open page is signed out on its next
// request and cannot sign in again), reactivates it (they sign in again), and resets a
// password to a one-time password the person must change before anything else.
import { test } from "node:test";
import assert from "node:assert/strict";
import { as, assertClean, demo, launch, open, password, screenshotBoth } from "./lib.mjs";

const row = (email) => `#admin-users tr[data-email="${email}"]`;

/** Fills and submits the sign-in form with `secret`. */
async function submitSignIn(page, email, secret) {
  await page.goto("/");
  await page.waitForSelector("#login-form");
  await page.fill("#email", email);
  await page.fill("#password", secret);
  await page.click("#login-form button[type=submit]");
}

test("the admin page deactivates and reactivates an account and resets a password", async () => {
  const browser = await launch();
  try {
    const admin = await as(browser, "coordinator");
    const trainee = await as(browser, "trainee");
    await trainee.goto("/#/cpd");
    await trainee.waitForSelector("h1:text('My CPD')");

    await admin.goto("/#/admin");
    await admin.waitForSelector(row(demo.trainee));
    // Nobody deactivates themselves: the coordinator's own row offers nothing.
    assert.equal(await admin.locator(`${row(demo.coordinator)} button`).count(), 0);
    assert.match(await admin.textContent(`${row(demo.coordinator)} td[data-label=Account]`), /You/);

    // Deactivate: asked once more in the row, then done.
    await admin.click(`${row(demo.trainee)} button:text("Deactivate")`);
    await admin.waitForSelector(`${row(demo.trainee)} button:text("Confirm deactivation")`);
    await admin.click(`${row(demo.trainee)} button:text("Cancel")`);
    await admin.waitForSelector(`${row(demo.trainee)} button:text("Deactivate")`);
    await admin.click(`${row(demo.trainee)} button:text("Deactivate")`);
    await admin.click(`${row(demo.trainee)} button:text("Confirm deactivation")`);
    await admin.waitForSelector(`${row(demo.trainee)} button:text("Reactivate")`);
    assert.equal((await admin.textContent(`${row(demo.trainee)} .status`)).trim(), "Deactivated");
    assert.match(await admin.textContent("#admin-status"), /deactivated/);
    const coordinatorApi = await apiLogin(demo.coordinator, password);
    const listed = (await coordinatorApi("/api/users")).find((u) => u.email === demo.trainee);
    assert.equal(listed.active, false, "the server has it");

    // The trainee's open page: its next request is refused, and so is the quiet refresh
    // (their sign-ins ended), so the page asks them to sign in; and sign-in is refused.
    await trainee.expectConsole(/status of 401/, "the deactivated account's token and refresh cookie are refused with 401", async () => {
      await trainee.goto("/#/schedule");
      await trainee.waitForSelector("#login-form");
      await submitSignIn(trainee, demo.trainee, password);
      await trainee.waitForSelector("#login-error:not([hidden])");
    });
    assert.match(await trainee.textContent("#login-error"), /incorrect/);

    // Reactivate: they sign in again with their own password.
    await admin.click(`${row(demo.trainee)} button:text("Reactivate")`);
    await admin.waitForSelector(`${row(demo.trainee)} button:text("Deactivate")`);
    assert.equal((await admin.textContent(`${row(demo.trainee)} .status`)).trim(), "Active");
    assert.match(await admin.textContent("#admin-status"), /active again/);
    await submitSignIn(trainee, demo.trainee, password);
    await trainee.waitForSelector("#whoami:not([hidden])");
    assert.equal(await trainee.textContent("#me-role"), "trainee");

    // Reset the practitioner's password: the one-time password is shown once.
    await admin.click(`${row(demo.practitioner)} button:text("Reset password")`);
    await admin.waitForSelector("#one-time-password:not([hidden])");
    const once = (await admin.textContent("#one-time-password-value")).trim();
    assert.match(once, /^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/);
    assert.match(await admin.textContent(`${row(demo.practitioner)} .status`), /password to change/);
    await screenshotBoth(admin, "admin-accounts");

    // Signed in with it, the practitioner sees only the change form; a wrong one-time
    // password is shown next to its field; then their own password, and their pages.
    const physio = await open(browser);
    physio.role = "practitioner";
    await submitSignIn(physio, demo.practitioner, once);
    await physio.waitForSelector("#password-form");
    assert.ok(await physio.isHidden("#nav"));
    await physio.fill("#current-password", "not the one-time password");
    await physio.fill("#new-password", "my very own password");
    await physio.fill("#new-password-again", "my very own password");
    await physio.expectConsole(/status of 422/, "a wrong one-time password is refused with 422", async () => {
      await physio.click("#password-form button[type=submit]");
      await physio.waitForSelector("#current-password-error:not([hidden])");
    });
    assert.match(await physio.textContent("#current-password-error"), /not right/);
    await physio.fill("#new-password-again", "something else entirely");
    await physio.fill("#current-password", once);
    await physio.click("#password-form button[type=submit]");
    await physio.waitForSelector("#new-password-again-error:not([hidden])");
    await physio.fill("#new-password-again", "my very own password");
    await physio.click("#password-form button[type=submit]");
    await physio.waitForSelector("#nav:not([hidden])");
    await physio.waitForSelector("h1:text('My cases')");
    await physio.reload();
    await physio.waitForSelector("h1:text('My cases')");
    const mine = await apiLogin(demo.practitioner, "my very own password");
    assert.equal((await mine("/api/me")).must_change_password, false);

    assertClean(browser);
  } finally {
    await browser.close();
  }
});

/** An API client signed in with `email` and `secret` (setup and checks only). */
async function apiLogin(email, secret) {
  const base = process.env.MDT_E2E_URL;
  const res = await fetch(`${base}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password: secret }),
  });
  assert.equal(res.status, 200, `sign-in as ${email}`);
  const { access_token: token } = await res.json();
  return async (path) => {
    const r = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${token}` } });
    assert.ok(r.ok, `${path}: ${r.status}`);
    return r.json();
  };
}

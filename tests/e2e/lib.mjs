// Shared by the browser tests: starts Debian's Chromium with the flags MEDIA_NOTES gives
// (fake microphone and screen), signs a context in as a demo user, collects page errors,
// and saves screenshots at the two widths the front end is built for.
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { afterEach } from "node:test";
import { chromium } from "playwright-core";

export const base = process.env.MDT_E2E_URL;
export const password = process.env.MDT_E2E_PASSWORD;
export const WIDTHS = { desktop: { width: 1280, height: 900 }, tablet: { width: 768, height: 1024 } };
const shots = join(dirname(fileURLToPath(import.meta.url)), "screenshots");

export const demo = {
  coordinator: "coordinator@demo.mdt.test",
  consultant: "consultant@demo.mdt.test",
  practitioner: "physio@demo.mdt.test",
  trainee: "trainee@demo.mdt.test",
};

export async function launch() {
  assert.ok(base && password, "MDT_E2E_URL and MDT_E2E_PASSWORD must be set");
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync",
      "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream=display-media-type=monitor",
      "--disable-features=WebRtcHideLocalIpsWithMdns",
      "--auto-select-desktop-capture-source=Entire screen", "--autoplay-policy=no-user-gesture-required",
    ],
  });
}

/**
 * A fresh context (its own cookies) and page, with every script error and every console
 * error collected in `page.problems`: nothing is filtered globally. A test that provokes
 * one on purpose (a refused request, which Chromium logs as "Failed to load resource",
 * going offline) names it and says why with `page.expectConsole(pattern, why)` around
 * that step only; `page.excused` keeps what was let through, with its reason. Every page
 * opened is remembered, so `assertClean(browser)` can check them all at the end.
 */
export async function open(browser, viewport = WIDTHS.desktop) {
  const context = await browser.newContext({ viewport, baseURL: base, locale: "en-GB", timezoneId: "Europe/London" });
  const page = await context.newPage();
  page.problems = [];
  page.excused = [];
  const expected = new Set();
  page.on("pageerror", (e) => page.problems.push(`${e} (at ${page.url().replace(base, "")})`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const text = m.text();
    const allowance = [...expected].find((e) => e.pattern.test(text));
    if (allowance) {
      allowance.seen += 1;
      page.excused.push(`${text} (${allowance.why})`);
    } else {
      page.problems.push(`${text} (at ${page.url().replace(base, "")})`);
    }
  });
  /**
   * Lets console errors matching `pattern` through, for the reason `why`. With `step`
   * (an async function) only while it runs, resolving to its result; without, until the
   * returned function is called (await it). Either way the allowance ends only after the
   * browser has delivered what it logged so far.
   */
  page.expectConsole = async (pattern, why, step) => {
    assert.ok(pattern instanceof RegExp && why, "an expected console error needs a pattern and a reason");
    const allowance = { pattern, why, seen: 0 };
    expected.add(allowance);
    const stop = async () => {
      // A round trip through the page: console messages logged before it have arrived.
      await page.evaluate(() => new Promise((r) => setTimeout(r, 50))).catch(() => {});
      expected.delete(allowance);
      return allowance.seen;
    };
    if (!step) return stop;
    try {
      return await step();
    } finally {
      await stop();
    }
  };
  (browser.opened ??= []).push(page);
  keepTrail(page);
  return page;
}

/** Every page opened in this file, for the account of a failure. */
const pages = [];
/** What a page's trail keeps: its last this many happenings. */
const TRAIL = 60;

/**
 * Keeps, for the account of a failure, the page's last happenings: console messages,
 * script errors, and its WebSockets' opening, frames each way and closing (these tests'
 * data are the demo's synthetic patients).
 */
function keepTrail(page) {
  page.trail = [];
  const t0 = Date.now();
  const note = (what) => {
    page.trail.push(`+${Date.now() - t0}ms ${what.length > 300 ? `${what.slice(0, 300)}…` : what}`);
    if (page.trail.length > TRAIL) page.trail.shift();
  };
  page.on("console", (m) => note(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => note(`pageerror: ${e}`));
  page.on("websocket", (ws) => {
    const path = new URL(ws.url()).pathname;
    note(`ws open ${path}`);
    ws.on("framereceived", (f) => note(`ws <- ${f.payload}`));
    ws.on("framesent", (f) => note(`ws -> ${f.payload}`));
    ws.on("socketerror", (e) => note(`ws error ${e}`));
    ws.on("close", () => note(`ws closed ${path}`));
  });
  pages.push(page);
}

// A failed test prints each page's trail: what the browser saw and said when it failed.
afterEach((t) => {
  const failed = t.passed === false;
  for (const page of pages.splice(0)) {
    if (!failed) continue;
    console.error(`--- trail of ${page.role || "a page"} (${page.url().replace(base, "")})`);
    for (const line of page.trail) console.error(`  ${line}`);
  }
});

/** Controls in <main> with no label (a <label>, aria-label or aria-labelledby). */
export function unlabelled(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("main input, main select, main textarea")]
      .filter((el) => el.type !== "hidden")
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
      .map((el) => el.outerHTML.slice(0, 160)),
  );
}

/** What every page keeps: each control labelled, one h1, nothing styled inline (the CSP refuses style attributes). */
export async function basics(page, name) {
  assert.deepEqual(await unlabelled(page), [], `${name}: every control has a label`);
  assert.equal(await page.locator("h1").count(), 1, `${name}: one h1`);
  assert.equal(await page.locator("main [style]").count(), 0, `${name}: no style attributes`);
}

/** Fails unless every page opened on `browser` logged no error and threw nothing. */
export function assertClean(browser) {
  for (const page of browser.opened || []) {
    assert.deepEqual(page.problems, [], `console or script errors on ${page.role || "a page"} (last at ${page.url().replace(base, "")})`);
  }
}

/** Signs in through the form and waits for the signed-in shell. */
export async function signIn(page, email) {
  await page.goto("/");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#whoami:not([hidden])");
}

/** Opens a fresh signed-in page for a demo user. */
export async function as(browser, role, viewport) {
  const page = await open(browser, viewport);
  page.role = role;
  await signIn(page, demo[role]);
  return page;
}

/** Saves a full-page screenshot as screenshots/<name>-<width>.png. */
export async function screenshot(page, name) {
  mkdirSync(shots, { recursive: true });
  const { width } = page.viewportSize();
  await page.screenshot({ path: join(shots, `${name}-${width}.png`), fullPage: true });
}

/** Screenshots a page at both widths, returning to the width it had. */
export async function screenshotBoth(page, name) {
  const was = page.viewportSize();
  for (const size of Object.values(WIDTHS)) {
    await page.setViewportSize(size);
    await page.waitForTimeout(150);
    await screenshot(page, name);
  }
  await page.setViewportSize(was);
}

/** Calls the API from the test itself (setup only), signed in as a demo user. */
export async function apiAs(role) {
  const res = await fetch(`${base}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: demo[role], password }),
  });
  assert.equal(res.status, 200, `sign-in as ${role}`);
  const { access_token: token } = await res.json();
  return async (path, { method = "GET", body } = {}) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await r.json().catch(() => null);
    assert.ok(r.ok, `${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
    return json;
  };
}

/**
 * Moves a session, as the coordinator, to start `minutes` from now: a meeting may be
 * opened no earlier than 30 minutes before its start (`too_early`), and the demo's
 * sessions are days ahead. Book what the session needs first (booking closes 48 hours
 * before the start). Resolves to the moved session.
 */
export async function startSoon(sessionId, minutes = 5) {
  const coordinator = await apiAs("coordinator");
  const at = new Date(Date.now() + minutes * 60000);
  at.setUTCSeconds(0, 0);
  return coordinator(`/api/sessions/${sessionId}/reschedule`, {
    method: "POST",
    body: { starts_at: at.toISOString().replace(".000Z", "Z") },
  });
}

/**
 * What every booking made through the API in these tests carries besides its own fields:
 * the patient's agreement (always required) and a STarT Back score (required for back and
 * neck sites by the demo's specialties).
 */
export const PROFORMA = { patient_agrees: true, referral_source: "gp", symptom_weeks: 12, start_back: { total: 3, psychosocial: 1 } };

/**
 * The coordinator's API client for the triage helpers, signed in once a few minutes (sign-
 * ins are rate limited, and a test may book many cases).
 */
let triagerClient = null;
async function triager() {
  if (!triagerClient || Date.now() - triagerClient.at > 5 * 60000) {
    triagerClient = { api: await apiAs("coordinator"), at: Date.now() };
  }
  return triagerClient.api;
}

/**
 * Accepts onto the agenda, as the coordinator, every booking waiting for triage in
 * `sessionId`, or in every session without one (new bookings wait for triage and are not
 * on the agenda until then; the demo's own bookings too). Resolves to the accepted cases.
 */
export async function acceptWaiting(sessionId) {
  const coordinator = await triager();
  const waiting = (await coordinator("/api/triage")).filter((i) => !sessionId || i.session.id === sessionId);
  const accepted = [];
  for (const { case: c } of waiting) {
    accepted.push(await coordinator(`/api/cases/${c.id}/triage`, { method: "POST", body: { decision: "accept" } }));
  }
  return accepted;
}

/**
 * Books a case through the API (`api` from apiAs) with the test proforma, then accepts it
 * onto the agenda as the coordinator. Resolves to the accepted case.
 */
export async function bookAccepted(api, sessionId, body) {
  const booked = await api(`/api/sessions/${sessionId}/cases`, { method: "POST", body: { ...PROFORMA, ...body } });
  const coordinator = await triager();
  return coordinator(`/api/cases/${booked.id}/triage`, { method: "POST", body: { decision: "accept" } });
}

/** A valid NHS number (Modulus 11 check digit) from a 9-digit stem. */
export function nhsNumber(stem) {
  const digits = String(stem).padStart(9, "0").split("").map(Number);
  const sum = digits.reduce((s, d, i) => s + d * (10 - i), 0);
  const check = 11 - (sum % 11);
  if (check === 10) return nhsNumber(Number(stem) + 1);
  return `${digits.join("")}${check === 11 ? 0 : check}`;
}

/** Records every RTCPeerConnection a page makes, so a test can read its getStats(). */
export async function watchPeerConnections(page) {
  await page.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.__pcs = [];
    window.RTCPeerConnection = class extends Native {
      constructor(...args) {
        super(...args);
        window.__pcs.push(this);
      }
    };
  });
}

/** The inbound RTP stats of a page's open peer connections. */
export function inbound(page, kind) {
  return page.evaluate(async (kind) => {
    const out = [];
    for (const pc of window.__pcs || []) {
      if (pc.connectionState === "closed") continue;
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === kind) {
          out.push({ packets: s.packetsReceived || 0, framesDecoded: s.framesDecoded || 0, frameWidth: s.frameWidth || 0 });
        }
      });
    }
    return out;
  }, kind);
}

/** Polls `check` until it returns a truthy value, or fails with `what`. */
export async function until(what, check, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

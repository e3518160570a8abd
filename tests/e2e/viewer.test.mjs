// The shared image viewer (issue 18) in the browser, on the demo's pain teaching session:
// the presenter opens a multi-frame CT of the case under discussion, changes the frame,
// the window, the zoom and the pan, and draws a ruler; the chair's and a second
// consultant's canvases show the same view and the same pixels within 200 ms of the
// presenter's last change; a late joiner lands on the current view; a follower looks
// around and snaps back; the trainee sees no image and never fetches one; handing back to
// screen share closes every viewer. The case page opens the same image in its own viewer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { acceptWaiting, apiAs, assertClean, base, demo, launch, open, password, screenshotBoth, signIn, startSoon, until } from "./lib.mjs";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "dicom");

/** A bearer token for `email` (setup only). */
async function token(email) {
  const res = await fetch(`${base}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  assert.equal(res.status, 200, `sign-in as ${email}`);
  return (await res.json()).access_token;
}

/** Records, in the page, each view the viewer's canvas finishes drawing, with the time. */
async function watchViews(page) {
  await page.evaluate(() => {
    window.__views = [];
    const seen = new WeakSet();
    const watch = () => {
      const canvas = document.querySelector(".viewer-canvas");
      if (!canvas || seen.has(canvas)) return;
      seen.add(canvas);
      new MutationObserver(() => window.__views.push({ at: Date.now(), view: canvas.dataset.view }))
        .observe(canvas, { attributes: true, attributeFilter: ["data-view"] });
    };
    watch();
    new MutationObserver(watch).observe(document.body, { childList: true, subtree: true });
  });
}

const viewOf = (page) => page.evaluate(() => document.querySelector("#stage .viewer-canvas")?.dataset.view || "");
/** A digest of the canvas's pixels. */
const pixels = (page) => page.evaluate(async () => {
  const canvas = document.querySelector("#stage .viewer-canvas");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const digest = await crypto.subtle.digest("SHA-256", data);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
});

test("the presenter drives the shared viewer and everyone follows", async () => {
  const coordinator = await apiAs("coordinator");
  const session = (await coordinator("/api/sessions?specialty=pain")).find((s) => s.teaching);
  assert.ok(session, "the demo has a pain teaching session");
  await acceptWaiting(session.id);
  const [first] = (await coordinator(`/api/sessions/${session.id}`)).agenda;
  // The practitioner attaches an 8-frame CT to the first case.
  const form = new FormData();
  form.append("file", new Blob([readFileSync(join(fixtures, "multiframe_ct.dcm"))], { type: "application/dicom" }), "multiframe_ct.dcm");
  const res = await fetch(`${base}/api/cases/${first.id}/attachments`, {
    method: "POST", headers: { Authorization: `Bearer ${await token(demo.practitioner)}` }, body: form,
  });
  assert.equal(res.status, 201, "the CT attaches");
  const scan = (await res.json()).id;
  // A second consultant of the specialty follows besides the chair.
  const colleague = `colleague.${Date.now()}@demo.mdt.test`;
  await coordinator("/api/users", {
    method: "POST",
    body: { email: colleague, name: "Dr Robin Colleague", role: "consultant", specialties: ["pain"], password },
  });
  await startSoon(session.id);

  const browser = await launch();
  try {
    const page = async (email) => {
      const p = await open(browser);
      p.role = email.split("@")[0];
      await signIn(p, email);
      return p;
    };
    const chair = await page(demo.consultant);
    const physio = await page(demo.practitioner);
    const follower = await page(colleague);
    const trainee = await page(demo.trainee);
    const traineeFetches = [];
    trainee.on("request", (r) => {
      if (/\/api\/attachments\//.test(r.url())) traineeFetches.push(r.url());
    });
    for (const p of [chair, physio, follower, trainee]) {
      await p.goto(`/#/meeting/${session.id}`);
      await p.waitForSelector("#agenda li[data-case-id]");
    }
    await chair.click("#open-meeting");
    await chair.waitForSelector("#meeting-state:text('live')");
    await chair.click("#next-case");
    await physio.waitForSelector("#current-case:text('Now discussing')");
    await physio.click("#request-present");
    await chair.waitForSelector("#request-present, #present-self");
    await chair.click(`button[aria-label="Let Pat Physiotherapist present"]`);
    await physio.waitForSelector("#share-toggle");

    // The presenter opens the CT; everyone but the trainee follows.
    await physio.click(`#viewer-open button[data-attachment-id="${scan}"]`);
    await physio.waitForSelector("#stage .viewer-canvas[data-view*='attachment_id']");
    for (const p of [chair, follower]) {
      await p.waitForSelector("#stage .viewer-canvas[data-view*='attachment_id']");
      assert.ok(await p.isVisible("#viewer-following"));
    }
    await trainee.waitForSelector("#viewer-withheld");
    assert.match(await trainee.textContent("#viewer-withheld"), /shown to clinicians only/);
    assert.ok(await physio.isVisible("#viewer-trainee-note"), "the presenter is told trainees see no images");
    assert.match(await physio.textContent(".viewer-facts"), /CT · LSPINE · Synthetic multi-frame/);

    // Frame, window, zoom, then pan (the last change), each a moment apart.
    for (const p of [physio, chair, follower]) await watchViews(p);
    await physio.click("#viewer-next");
    await physio.click("#viewer-next");
    await physio.waitForTimeout(150);
    await physio.fill("#viewer-wc", "100");
    await physio.fill("#viewer-ww", "600");
    await physio.dispatchEvent("#viewer-ww", "change");
    await physio.waitForTimeout(150);
    await physio.click("#viewer-zoom-in");
    await physio.click("#viewer-zoom-in");
    await physio.waitForTimeout(150);
    await physio.focus("#stage .viewer-canvas");
    await physio.keyboard.press("ArrowRight");
    await physio.keyboard.press("ArrowDown");
    const last = await until("the presenter's view settles", async () => {
      const views = await physio.evaluate(() => window.__views);
      const v = views.at(-1);
      return v && JSON.parse(v.view).pan[1] > 0.5 ? v : null;
    });
    const shared = JSON.parse(last.view);
    assert.deepEqual([shared.frame, shared.wc, shared.ww, shared.zoom], [2, 100, 600, 1.563]);
    for (const p of [chair, follower]) {
      const drawn = await until("a follower draws the presenter's view", async () =>
        (await p.evaluate(() => window.__views)).find((v) => v.view === last.view));
      const lag = drawn.at - last.at;
      assert.ok(lag <= 200, `the follower drew the presenter's last change ${lag} ms after it`);
    }
    const want = await pixels(physio);
    assert.equal(await pixels(chair), want, "the chair's pixels are the presenter's");
    assert.equal(await pixels(follower), want, "the consultant's pixels are the presenter's");

    // A ruler in millimetres (0.5 mm pixels), drawn for everyone.
    await physio.click("#viewer-measure");
    const box = await physio.locator("#stage .viewer-canvas").boundingBox();
    await physio.mouse.click(box.x + box.width * 0.3, box.y + box.height * 0.5);
    await physio.mouse.click(box.x + box.width * 0.7, box.y + box.height * 0.5);
    for (const p of [physio, chair, follower]) {
      await p.waitForFunction(() => /Ruler: [0-9.]+ mm/.test(document.querySelector(".viewer-ruler")?.textContent || ""));
    }

    // A late joiner (the coordinator) lands on the current view, with the same pixels.
    const late = await page(demo.coordinator);
    await late.goto(`/#/meeting/${session.id}`);
    const now = await viewOf(physio);
    await late.waitForFunction((v) => document.querySelector("#stage .viewer-canvas")?.dataset.view === v, now);
    assert.equal(await pixels(late), await pixels(physio), "the late joiner's pixels");

    // A follower looks around, then snaps back to the presenter's view.
    await follower.click("#viewer-zoom-in");
    await follower.waitForSelector("#viewer-snap-back");
    assert.notEqual(await viewOf(follower), now);
    await follower.click("#viewer-snap-back");
    await follower.waitForFunction((v) => document.querySelector("#stage .viewer-canvas")?.dataset.view === v, now);
    await screenshotBoth(follower, "meeting-viewer");

    // Back to screen share: every viewer closes.
    await physio.click("#viewer-close");
    for (const p of [chair, follower, late]) await p.waitForSelector("#stage .viewer-canvas", { state: "detached" });
    await trainee.waitForSelector("#viewer-withheld", { state: "detached" });
    assert.deepEqual(traineeFetches, [], "the trainee never asked for an attachment");

    // The case page opens the image in its own viewer.
    await physio.goto(`/#/cases/${first.id}`);
    await physio.click(`#attachments button[data-attachment-id="${scan}"]`);
    await physio.waitForSelector("#case-viewer .viewer-canvas[data-view*='attachment_id']");
    await screenshotBoth(physio, "case-viewer");
    assertClean(browser);
  } finally {
    await browser.close();
  }
});

// The records pages end to end against a fresh demo server (MDT_E2E_URL): a coordinator
// sets up a mentorship contract; the physio flags a case for mentorship on its case
// page; the consultant logs mentorship covering it, with the physio as mentee, and the
// summary shows the time delivered and the backlog cleared (mentees are picked by name from
// the people directory, cases from the backlog); the physio sees the log; the
// coordinator searches the audit trail by NHS number and verifies the chain; the trainee
// opens My CPD and the certificate; a case exports as a FHIR Bundle.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { acceptWaiting, apiAs, as, assertClean, basics, launch, screenshotBoth, startSoon } from "./lib.mjs";

const NECK = "9434765919"; // booked by the demo physio into the pain (teaching) MDT
const DEMO_NHS = ["9912003888", "9449305552", "9434765919"];
const spaced = (n) => `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}`;
/** The UK (clinic) day of an instant, as YYYY-MM-DD. */
const ukDay = (d = new Date()) =>
  new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/London", year: "numeric", month: "2-digit", day: "2-digit" }).format(d);

const cellText = (page, row, cls) => page.locator(`${row} td.${cls}`).innerText();

test("mentorship, audit, CPD and FHIR export through the pages", async () => {
  const consultantApi = await apiAs("consultant");
  const physioApi = await apiAs("practitioner");
  const consultant = await consultantApi("/api/me");
  const physio = await physioApi("/api/me");
  const neck = (await physioApi("/api/cases?mine=true")).find((c) => c.patient.nhs_number === NECK);
  assert.ok(neck, "the demo physio booked the neck case");

  const browser = await launch();
  try {
    // ---- The coordinator sets up a pain-arm contract for the demo consultant. ----------
    const coordinator = await as(browser, "coordinator");
    await coordinator.goto("/#/mentorship");
    await coordinator.waitForSelector("#contract-form");
    await basics(coordinator, "coordinator mentorship");
    // An empty form is refused in the browser, focus on the first field.
    await coordinator.click("#contract-submit");
    assert.equal(await coordinator.evaluate(() => document.activeElement?.id), "contract-consultant");
    await coordinator.selectOption("#contract-consultant", consultant.id);
    await coordinator.selectOption("#contract-specialty", "pain");
    await coordinator.fill("#contract-minutes", "60");
    await coordinator.fill("#contract-weeks", "42");
    await coordinator.click("#contract-submit");
    await coordinator.waitForFunction(() => /Contract created/.test(document.getElementById("mentorship-status").textContent));
    // The lists are brought up to date after the creation is reported.
    await coordinator.waitForFunction(() => /Dr Morgan Consultant/.test(document.getElementById("contracts").textContent));
    const coordRow = '#summary tr[data-specialty="pain"]';
    await coordinator.waitForSelector(coordRow);
    assert.match(await cellText(coordinator, coordRow, "backlog"), /^0$/);

    // ---- The physio flags the neck case on its page. --------------------------------------
    const physioPage = await as(browser, "practitioner");
    await physioPage.goto(`/#/cases/${neck.id}`);
    await physioPage.waitForSelector("#mentorship-flag");
    await basics(physioPage, "case");
    assert.equal((await physioPage.textContent("#mentorship-flag")).trim(), "Flag for mentorship");
    await physioPage.focus("#mentorship-flag");
    await physioPage.keyboard.press("Enter");
    await physioPage.waitForFunction(() => document.getElementById("mentorship-flag").textContent === "Remove mentorship flag");
    assert.match(await physioPage.textContent("#mentorship-state"), /On the pain mentorship backlog since/);

    // The FHIR export downloads a Bundle, with no token in any address.
    const [download] = await Promise.all([physioPage.waitForEvent("download"), physioPage.click("#export-fhir")]);
    assert.equal(download.suggestedFilename(), `case-${neck.id}.fhir.json`);
    const bundle = JSON.parse(await readFile(await download.path(), "utf8"));
    assert.equal(bundle.resourceType, "Bundle");
    assert.ok(bundle.entry.some((e) => e.resource.resourceType === "Patient"), "the bundle has the Patient");
    await screenshotBoth(physioPage, "case-flagged");
    assert.deepEqual(physioPage.problems, []);

    // ---- The consultant logs mentorship covering the case, with the physio. --------------
    const consultantPage = await as(browser, "consultant");
    await consultantPage.goto("/#/mentorship");
    await consultantPage.waitForSelector("#log-form");
    await consultantPage.waitForSelector('#summary tr[data-specialty="pain"]');
    await basics(consultantPage, "consultant mentorship");
    const row = '#summary tr[data-specialty="pain"]';
    assert.equal(await cellText(consultantPage, row, "backlog"), "1", "the flagged case is on the backlog");
    assert.equal(await cellText(consultantPage, row, "delivered"), "0 min");
    // One contract runs today: the arm is not asked for.
    assert.equal(await consultantPage.isVisible("#log-specialty"), false);
    // Mentees are picked by name from the directory, grouped by role: no account ids.
    const practitioners = await consultantPage.locator("#log-mentees-practitioner label").allInnerTexts();
    assert.ok(practitioners.some((t) => /^Pat Physiotherapist\b/.test(t)), `the picker lists the physio by name: ${practitioners}`);
    assert.match(await consultantPage.textContent("#log-mentees-practitioner legend"), /Practitioners/);
    assert.match(await consultantPage.textContent("#log-mentees-trainee"), /Tam Trainee/);
    assert.doesNotMatch(await consultantPage.textContent("#log-mentees"), /[0-9a-f]{8}-[0-9a-f]{4}-/, "no raw account ids");
    assert.equal(await consultantPage.locator("#log-other-mentees").count(), 0);
    // The backlog lists the flagged case (identified); ticking it ticks its referrer.
    const firstCase = consultantPage.locator("#log-cases input[type=checkbox]").first();
    assert.equal(await firstCase.getAttribute("value"), neck.id);
    const caseLabel = await consultantPage.locator("#log-cases label").first().innerText();
    assert.match(caseLabel, /Jo Specimen/);
    assert.match(caseLabel, /flagged/);
    assert.match(caseLabel, /referred by Pat Physiotherapist/);
    // Keyboard: the case's checkbox takes focus and Space ticks it.
    await firstCase.focus();
    await consultantPage.keyboard.press("Space");
    assert.equal(await firstCase.isChecked(), true);
    assert.equal(await consultantPage.isChecked(`#log-mentees input[value="${physio.id}"]`), true);
    await consultantPage.fill("#log-minutes", "45");
    await consultantPage.selectOption("#log-kind", "case_review");
    await consultantPage.fill("#log-points", "Red flags screen for neck pain\nWhen to refer to the pain management programme");
    await consultantPage.click("#log-submit");
    await consultantPage.waitForFunction(() => /Mentorship logged: 45 min/.test(document.getElementById("mentorship-status").textContent));
    assert.match(await consultantPage.textContent("#mentorship-status"), /1 case taken off the backlog/);
    assert.equal(await consultantPage.locator(`#log-cases input[value="${neck.id}"]`).count(), 0, "the case left the backlog list");
    // The log names its mentee from the directory.
    assert.match(await consultantPage.locator(".log-row").first().innerText(), /Pat Physiotherapist/);
    await consultantPage.waitForFunction((r) => document.querySelector(`${r} td.delivered`)?.innerText.trim() === "45 min", row);
    assert.equal(await cellText(consultantPage, row, "backlog"), "0", "the backlog dropped");
    assert.match(await consultantPage.locator(".log-row").first().innerText(), /Case review[\s\S]*45 min/);
    assert.equal(await consultantPage.locator("#summary svg.bar").count(), 1);
    await screenshotBoth(consultantPage, "mentorship");
    assert.deepEqual(consultantPage.problems, []);

    // ---- The physio sees the log they were mentored in. ---------------------------------
    await physioPage.goto("/#/mentorship");
    await physioPage.waitForSelector(".log-row");
    await basics(physioPage, "mentee mentorship");
    const logText = await physioPage.locator(".log-row").first().innerText();
    assert.match(logText, /Pat Physiotherapist \(you\)/);
    assert.match(logText, /Red flags screen for neck pain/);
    assert.match(logText, /Jo Specimen/, "the referrer sees their own case identified");
    assert.equal(await physioPage.locator("#summary").count(), 0, "mentees have no summary");
    await screenshotBoth(physioPage, "mentorship-mentee");
    assert.deepEqual(physioPage.problems, []);

    // The coordinator's view of the same: every contract and log, with names.
    await coordinator.reload(); // already at #/mentorship: load it afresh
    await coordinator.waitForSelector(".log-row");
    assert.equal(await cellText(coordinator, coordRow, "delivered"), "45 min");
    assert.match(await coordinator.locator(".log-row").first().innerText(), /Dr Morgan Consultant[\s\S]*Pat Physiotherapist/);
    await screenshotBoth(coordinator, "mentorship-coordinator");

    // ---- The coordinator's audit search by NHS number, and the chain check. -------------
    // More reads of the case than one page of results holds (50), so paging is used.
    for (let i = 0; i < 45; i++) await physioApi(`/api/cases/${neck.id}`);
    const urls = [];
    coordinator.on("request", (r) => urls.push(r.url()));
    await coordinator.goto("/#/audit");
    await coordinator.waitForSelector("#audit-form");
    await basics(coordinator, "audit");
    await coordinator.fill("#audit-nhs", "943 476 5918"); // a wrong check digit
    await coordinator.click("#audit-submit");
    assert.equal(await coordinator.evaluate(() => document.activeElement?.id), "audit-nhs");
    await coordinator.fill("#audit-nhs", spaced(NECK));
    await coordinator.click("#audit-submit");
    await coordinator.waitForSelector(".audit-row");
    assert.match(await coordinator.textContent("#results-h"), /943 476 5919/);
    const actions = await coordinator.locator(".audit-row").allInnerTexts();
    assert.ok(actions.some((t) => /case flagged for mentorship/.test(t) && /Pat Physiotherapist/.test(t)), "the flag is in the patient's trail");
    assert.equal(await coordinator.locator(".audit-row").count(), 50, "one page");
    assert.ok(await coordinator.isVisible("#audit-more"), "more events to come");
    while (await coordinator.isVisible("#audit-more")) {
      const before = await coordinator.locator(".audit-row").count();
      await coordinator.click("#audit-more");
      await coordinator.waitForFunction((n) => document.querySelectorAll(".audit-row").length > n, before);
    }
    const seqs = await coordinator.locator(".audit-row").evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
    assert.ok(seqs.length > 50, "the next page was appended");
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in chain order, no repeats");
    assert.equal(new Set(seqs).size, seqs.length);
    const all = await coordinator.locator(".audit-row").allInnerTexts();
    assert.ok(all.some((t) => /case exported/.test(t)), "the FHIR export is in the trail");
    assert.ok(all.some((t) => /case mentorship discussed/.test(t)), "the log is in the trail");
    await coordinator.click("#verify-chain");
    await coordinator.waitForSelector('#verify-result [data-ok="true"]');
    assert.match(await coordinator.textContent("#verify-result"), /Intact/);
    assert.deepEqual(urls.filter((u) => DEMO_NHS.some((n) => u.includes(n))), [], "no NHS number in any address");
    await screenshotBoth(coordinator, "audit");
    assert.deepEqual(coordinator.problems, []);

    // ---- The trainee's CPD record and certificate. ----------------------------------------
    // Attendance comes from the live channel: the trainee joins the pain teaching
    // meeting, the chair opens it and starts the first case (cases count once they reach
    // discussion), and the trainee leaves again.
    const teaching = (await consultantApi("/api/sessions?specialty=pain")).find((s) => s.teaching && s.booked > 0);
    // Its demo booking is accepted from triage onto the agenda.
    await acceptWaiting(teaching.id);
    // A meeting opens no earlier than 30 minutes before its start: the coordinator moves
    // it to start in five minutes.
    await startSoon(teaching.id);
    const trainee = await as(browser, "trainee");
    consultantPage.on("dialog", (d) => d.accept());
    await consultantPage.goto(`/#/meeting/${teaching.id}`);
    await consultantPage.waitForSelector("#open-meeting");
    await trainee.goto(`/#/meeting/${teaching.id}`);
    await trainee.waitForSelector("#agenda li[data-case-id]");
    await consultantPage.click("#open-meeting");
    await trainee.waitForSelector("#meeting-state:text('live')");
    await consultantPage.click("#next-case");
    await trainee.waitForSelector("#agenda li.current");

    await trainee.goto("/#/cpd");
    await trainee.waitForSelector("#cpd-totals dl");
    await basics(trainee, "cpd");
    // The meeting is in the future (the demo's schedule): widen the period to it.
    await trainee.fill("#cpd-period-to", ukDay(new Date(teaching.starts_at)));
    await trainee.click("#cpd-period button[type=submit]");
    await trainee.waitForSelector(`tr.attended[data-session="${teaching.id}"]`);
    assert.equal(await trainee.textContent("#cpd-sessions"), "1");
    assert.match(await trainee.textContent("#cpd-hours"), /^[0-9.]+$/);
    const attended = await trainee.locator("tr.attended").innerText();
    assert.match(attended, /Pain MDT \(teaching\)/);
    assert.match(attended, /Case 1 · F · 60–69 · neck/, "cases are de-identified");
    await trainee.click("#certificate-button");
    await trainee.waitForSelector("#certificate-frame");
    const cert = trainee.frameLocator("#certificate-frame");
    await cert.locator("h1").waitFor();
    assert.equal(await cert.locator("h1").innerText(), "Certificate of attendance");
    assert.match(await cert.locator(".lead").innerText(), /Tam Trainee/);
    // The certificate's stylesheet loads inside the frame under the page's CSP.
    const font = await cert.locator("body").evaluate((b) => getComputedStyle(b).fontFamily);
    assert.match(font, /Georgia/);
    assert.equal(await trainee.evaluate(() => document.activeElement?.id), "certificate-print");
    // The frame grows to the certificate's height (an attribute: no inline style).
    await trainee.waitForFunction(() => Number(document.getElementById("certificate-frame").getAttribute("height")) > 300);
    const text = await trainee.evaluate(() => document.body.innerText);
    for (const n of DEMO_NHS) assert.ok(!text.includes(n) && !text.includes(spaced(n)), "My CPD shows no NHS number");
    await screenshotBoth(trainee, "cpd");
    assert.deepEqual(trainee.problems, []);
    assert.deepEqual(consultantPage.problems, [], "the chair's meeting page");
    assertClean(browser);
  } finally {
    await browser.close();
  }
});

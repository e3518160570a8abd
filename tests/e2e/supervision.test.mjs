// Mentorship beyond the meeting and the supervision record (issue 21) through the pages,
// against a fresh demo server (MDT_E2E_URL): the physio adds a patient from their own
// caseload; the mentoring consultant advises "book into the MDT" at a session, and the
// case is on that session's agenda with its details; the coordinator assigns cover for
// the consultant's contract and the summary shows it; the coordinator names supervisors
// and a fifth for one supervisor is refused in words; the supervisor records an
// assessment and the month shows the physio below target; the physio writes a reflection,
// opens a portfolio with no patient identifiers, and sees the assessment on My CPD.
import { test } from "node:test";
import assert from "node:assert/strict";
import { apiAs, as, assertClean, basics, launch, nhsNumber, screenshotBoth } from "./lib.mjs";

/** The UK (clinic) day of an instant, as YYYY-MM-DD. */
const ukDay = (d = new Date()) =>
  new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/London", year: "numeric", month: "2-digit", day: "2-digit" }).format(d);
const PASSWORD = "correct horse battery staple";

test("caseload mentorship, cover and the supervision record through the pages", async () => {
  const coordinatorApi = await apiAs("coordinator");
  const consultantApi = await apiAs("consultant");
  const physioApi = await apiAs("practitioner");
  const consultant = await consultantApi("/api/me");
  const physio = await physioApi("/api/me");
  // The caseload form offers the physio's arms, the first chosen.
  const arm = physio.specialties[0];
  assert.ok(consultant.specialties.includes(arm), "the demo consultant works in the physio's first arm");
  const today = ukDay();
  const contract = await coordinatorApi("/api/mentorship/contracts", {
    method: "POST",
    body: { consultant_id: consultant.id, specialty: arm, minutes_per_week: 60, weeks_per_year: 52, starts_on: today, ends_on: null },
  });
  // A second consultant of the arm, to cover, and four more practitioners to supervise.
  const newUser = (email, name, role) => coordinatorApi("/api/users", { method: "POST", body: { email, name, role, specialties: [arm], password: PASSWORD } });
  const cover = await newUser("cover@demo.mdt.test", "Dr Casey Cover", "consultant");
  const others = [];
  for (const i of [1, 2, 3, 4]) others.push(await newUser(`fcp${i}@demo.mdt.test`, `Frankie Fcp ${i}`, "practitioner"));
  const nhs = nhsNumber(712345678);
  const spaced = `${nhs.slice(0, 3)} ${nhs.slice(3, 6)} ${nhs.slice(6)}`;

  const browser = await launch();
  try {
    // ---- The physio adds a patient from their caseload. ---------------------------------
    const physioPage = await as(browser, "practitioner");
    await physioPage.goto("/#/caseload");
    await physioPage.waitForSelector("#caseload-form");
    await basics(physioPage, "caseload (practitioner)");
    await physioPage.getByLabel("NHS number").fill(spaced);
    await physioPage.getByLabel("Given name").fill("Casey");
    await physioPage.getByLabel("Family name").fill("Loadpatient");
    await physioPage.getByLabel("Date of birth").fill("1969-02-11");
    await physioPage.getByLabel("Sex").selectOption("female");
    await physioPage.getByLabel("GP practice code").fill("A81001");
    await physioPage.getByLabel("Question for the MDT").fill("Knee pain after six weeks of exercise therapy: MRI now, or continue?");
    await physioPage.getByLabel("History summary").fill("Medial knee pain, no locking, effusion settled.");
    await physioPage.getByLabel("Body region").selectOption("knee");
    await physioPage.getByLabel(/The patient agrees/).check();
    await physioPage.click("#caseload-submit");
    await physioPage.waitForFunction(() => /mentorship list, waiting for advice/.test(document.getElementById("caseload-status").textContent));
    const added = (await physioApi("/api/mentorship/cases?mine=true")).find((c) => c.patient.nhs_number === nhs);
    assert.ok(added, "the case is on the physio's list");
    const physioRow = `#caseload-cases tr[data-case="${added.id}"]`;
    await physioPage.waitForSelector(`${physioRow}[data-state="awaiting_advice"]`);

    // ---- The mentoring consultant books it into the MDT. ----------------------------------
    const consultantPage = await as(browser, "consultant");
    await consultantPage.goto("/#/caseload");
    const row = `#caseload-cases tr[data-case="${added.id}"]`;
    await consultantPage.waitForSelector(row);
    await basics(consultantPage, "caseload (consultant)");
    await screenshotBoth(consultantPage, "caseload-consultant");
    await consultantPage.selectOption(`#advice-decision-${added.id}`, "book_mdt");
    const sessionSelect = `#advice-session-${added.id}`;
    await consultantPage.waitForSelector(sessionSelect, { state: "visible" });
    const sessionId = await consultantPage.$eval(sessionSelect, (s) => [...s.options].find((o) => o.value)?.value);
    assert.ok(sessionId, "a session of the arm takes bookings");
    await consultantPage.selectOption(sessionSelect, sessionId);
    await consultantPage.fill(`#advice-note-${added.id}`, "Needs the MDT: book the MRI review.");
    await consultantPage.click(`#advice-submit-${added.id}`);
    await consultantPage.waitForFunction(() => /booked into the MDT and on the session's agenda/.test(document.getElementById("caseload-status").textContent));
    await consultantPage.waitForSelector(`${row}[data-state="booked"]`);
    const { agenda } = await consultantApi(`/api/sessions/${sessionId}`);
    const listed = agenda.find((c) => c.patient?.nhs_number === nhs);
    assert.ok(listed, "the case is on the session's agenda");
    assert.equal(listed.clinical_question, added.clinical_question);
    assert.equal(listed.referrer_id, physio.id);
    // The physio sees the decision on their own list.
    await physioPage.reload();
    await physioPage.waitForSelector(`${physioRow}[data-state="booked"]`);
    assert.match(await physioPage.locator(`${physioRow} .advice`).innerText(), /Book into the MDT/);

    // ---- The coordinator assigns cover; the summary shows who covered. --------------------
    const coordinator = await as(browser, "coordinator");
    await coordinator.goto("/#/mentorship");
    await coordinator.waitForSelector("#cover-form");
    await basics(coordinator, "mentorship (coordinator)");
    await coordinator.selectOption("#cover-contract", contract.id);
    await coordinator.selectOption("#cover-consultant", consultant.id);
    await coordinator.fill("#cover-from", today);
    await coordinator.fill("#cover-to", today);
    // The contract's own consultant does not cover it: said in words.
    await coordinator.expectConsole(/status of 422/, "the server refuses a cover by the contract's own consultant", async () => {
      await coordinator.click("#cover-submit");
      await coordinator.waitForFunction(() => /own consultant does not cover it/.test(document.getElementById("cover-error").textContent));
    });
    await coordinator.selectOption("#cover-consultant", cover.id);
    await coordinator.click("#cover-submit");
    await coordinator.waitForFunction(() => /Cover assigned: Dr Casey Cover/.test(document.getElementById("mentorship-status").textContent));
    const summaryRow = `#summary tr[data-contract="${contract.id}"]`;
    await coordinator.waitForFunction((sel) => /Dr Casey Cover covered/.test(document.querySelector(sel)?.textContent || ""), summaryRow);

    // ---- Supervision: four supervisees for the consultant, a fifth refused. ----------------
    await coordinator.goto("/#/supervision");
    await coordinator.waitForSelector("#assign-form");
    await basics(coordinator, "supervision (coordinator)");
    await coordinator.selectOption("#assign-supervisee", physio.id);
    await coordinator.selectOption("#assign-supervisor", consultant.id);
    await coordinator.click("#assign-submit");
    await coordinator.waitForFunction(() => /supervises Pat Physiotherapist/.test(document.getElementById("supervision-status").textContent));
    for (const p of others.slice(0, 3)) {
      await coordinatorApi("/api/supervision/assignments", { method: "POST", body: { supervisee_id: p.id, supervisor_id: consultant.id } });
    }
    await coordinator.selectOption("#assign-supervisee", others[3].id);
    await coordinator.selectOption("#assign-supervisor", consultant.id);
    await coordinator.expectConsole(/status of 409/, "the fifth supervisee is refused", async () => {
      await coordinator.click("#assign-submit");
      await coordinator.waitForFunction(() => /already has as many supervisees as allowed/.test(document.getElementById("assign-error").textContent));
    });

    // ---- The supervisor records an assessment; one in the month is below target. ------------
    await consultantPage.goto("/#/supervision");
    await consultantPage.waitForSelector("#assess-form");
    await basics(consultantPage, "supervision (supervisor)");
    await consultantPage.selectOption("#assess-supervisee", physio.id);
    await consultantPage.selectOption("#assess-kind", "direct_observation");
    await consultantPage.click("#assess-submit");
    await consultantPage.waitForFunction(() => /Assessment recorded: direct observation/.test(document.getElementById("supervision-status").textContent));
    const monthRow = `#month-summary tr[data-supervisee="${physio.id}"]`;
    await consultantPage.waitForFunction((sel) => /1 of 2/.test(document.querySelector(sel)?.textContent || ""), monthRow);
    assert.match(await consultantPage.locator(monthRow).innerText(), /below target/);
    await screenshotBoth(consultantPage, "supervision-supervisor");

    // ---- The physio reflects, opens the portfolio, and sees the assessment on My CPD. -------
    await physioPage.goto("/#/supervision");
    await physioPage.waitForSelector(".reflection-form textarea");
    await basics(physioPage, "supervision (supervisee)");
    await physioPage.fill(".reflection-form textarea", `Patient ${spaced} taught me to slow down.`);
    await physioPage.expectConsole(/status of 422/, "a reflection with an NHS number is refused", async () => {
      await physioPage.click(".reflection-form button[type=submit]");
      await physioPage.waitForFunction(() => /remove the NHS number/.test(document.querySelector(".reflection-form .field-error").textContent));
    });
    await physioPage.fill(".reflection-form textarea", "I rushed the neurological examination; next time I will slow down.");
    await physioPage.click(".reflection-form button[type=submit]");
    await physioPage.waitForFunction(() => /Reflection saved/.test(document.getElementById("supervision-status").textContent));
    await physioPage.click("#portfolio-button");
    const frame = await physioPage.waitForSelector("#portfolio-frame");
    const html = await frame.getAttribute("srcdoc");
    assert.match(html, /Supervision portfolio/);
    assert.match(html, /I rushed the neurological examination/);
    assert.match(html, /Named supervisor: Dr Morgan Consultant/);
    for (const secret of [nhs, spaced, "Casey", "Loadpatient", "1969-02-11"]) {
      assert.ok(!html.includes(secret), `the portfolio leaks ${secret}`);
    }
    await physioPage.goto("/#/cpd");
    await physioPage.waitForSelector("#cpd-assessments");
    assert.equal((await physioPage.textContent("#cpd-assessments")).trim(), "1");

    assertClean(browser);
  } finally {
    await browser.close();
  }
});

// Before the meeting (issue 15): a practitioner books a back-pain case with the referral
// proforma (fields by specialty and body site, repeatable treatment and imaging rows, the
// patient's agreement, a field the server requires shown next to it); the coordinator
// returns it from the triage queue with a reason and a note; the practitioner sees it
// returned in My cases, edits and resubmits it; the chair accepts it. The trainee's
// pages, API answers and live frames hold none of the new identifying data.
// Needs a fresh demo database (the test changes data).
import { test } from "node:test";
import assert from "node:assert/strict";
import { apiAs, as, assertClean, launch, nhsNumber, screenshotBoth, startSoon, until } from "./lib.mjs";

/** A date `days` before today (UTC), as YYYY-MM-DD. */
const daysAgo = (days) => new Date(Date.now() - days * 86400000).toISOString().slice(0, 10);

test("a booking with the proforma is returned, resubmitted and accepted; trainees see none of it", async () => {
  const coordinatorApi = await apiAs("coordinator");
  // The demo's pain teaching session (its chair is the demo consultant; trainees join it).
  const session = (await coordinatorApi("/api/sessions?specialty=pain")).filter((s) => s.teaching).sort((a, b) => a.starts_at.localeCompare(b.starts_at))[0];
  assert.ok(session, "the demo has a pain teaching session");
  const RECEIVED = daysAgo(9);
  const IMAGING_DATE = daysAgo(40);
  const IMAGING = "L4/5 disc protrusion abutting the left L5 nerve root";
  const MEDICATION = "Naproxen 500 mg twice daily for six weeks";
  const MEDICATION_2 = "Naproxen 500 mg twice daily; amitriptyline 10 mg at night";
  const NOTE = "Please add the amitriptyline trial the GP letter mentions before we list this.";
  const QUESTION = "Chronic lumbar pain with left leg symptoms despite physiotherapy: pain management programme or spinal opinion?";
  const HISTORY = "Eight weeks of physiotherapy with a home exercise programme; sleep poor; working reduced hours.";

  const browser = await launch();
  try {
    // ---- The practitioner books with the proforma.
    const physio = await as(browser, "practitioner");
    await physio.goto(`/#/book/${session.id}`);
    await physio.waitForSelector("#book-form #proforma");
    assert.match(await physio.textContent("#proforma-required"), /STarT Back score \(back and neck cases\)/);
    // The body-site choices carry the spinal levels and the sacroiliac joint.
    const regions = await physio.getByLabel("Body region").locator("option").allTextContents();
    for (const r of ["Cervical spine", "Thoracic spine", "Lumbar spine", "Sacroiliac joint"]) assert.ok(regions.includes(r), `${r} is a body region`);

    await physio.getByLabel("NHS number").fill(nhsNumber(401245678));
    await physio.getByLabel("Given name").fill("Morgan");
    await physio.getByLabel("Family name").fill("Proformacase");
    await physio.getByLabel("Date of birth").fill("1977-02-11");
    await physio.getByLabel("Sex").selectOption("male");
    await physio.getByLabel("GP practice code").fill("A81001");
    await physio.getByLabel("Question for the MDT").fill(QUESTION);
    await physio.getByLabel("History summary").fill(HISTORY);

    // STarT Back appears for back and neck sites only, marked as required.
    await physio.getByLabel("Body region").selectOption("knee");
    assert.ok(await physio.isHidden("#start-back"), "no STarT Back for a knee");
    await physio.getByLabel("Body region").selectOption("lumbar spine");
    await physio.waitForSelector("#start-back:not([hidden])");
    assert.match(await physio.textContent("#start-back"), /STarT Back total score \(0–9\) \(required\)/);
    await physio.getByLabel("Side").selectOption("left");

    await physio.getByLabel("Date the referral was received").fill(RECEIVED);
    await physio.getByLabel(/^Referred by/).selectOption("gp");
    // Two treatments added, one removed again: the rows renumber.
    await physio.click("#conservative_care-add");
    await physio.getByLabel("Treatment 1", { exact: true }).selectOption("analgesia");
    await physio.getByLabel("Weeks of treatment 1").fill("4");
    await physio.click("#conservative_care-add");
    await physio.getByLabel("Treatment 2", { exact: true }).selectOption("physiotherapy");
    await physio.getByLabel("Weeks of treatment 2").fill("8");
    await physio.click('button[aria-label="Remove treatment 1"]');
    assert.equal(await physio.getByLabel("Treatment 1", { exact: true }).inputValue(), "physiotherapy", "the second row is now the first");
    assert.equal(await physio.locator("#conservative_care-group .repeat-row").count(), 1);
    await physio.click("#imaging-add");
    await physio.getByLabel("Imaging 1", { exact: true }).selectOption("mri");
    await physio.getByLabel("Date of imaging 1").fill(IMAGING_DATE);
    await physio.getByLabel("Report summary of imaging 1").fill(IMAGING);
    await physio.getByLabel(/^Medication tried for pain/).fill(MEDICATION);

    // Without the STarT Back score or the patient's agreement nothing is sent.
    const posts = [];
    physio.on("request", (r) => r.method() === "POST" && /\/cases$/.test(r.url()) && posts.push(r));
    await physio.click("#book-submit");
    await physio.waitForSelector("#book-error:not([hidden])");
    assert.match(await physio.locator("#start-back .field-error").first().textContent(), /STarT Back/);
    assert.match(await physio.textContent("#patient-agrees-error"), /patient must agree/i);
    assert.equal(posts.length, 0);
    await physio.getByLabel("STarT Back total score (0–9) (required)").fill("6");
    await physio.getByLabel("Psychosocial subscore (0–5)").fill("4");
    await physio.getByLabel(/The patient agrees/).check();

    // Meanwhile the coordinator makes symptom duration required for pain: the server's
    // refusal names the field and the page shows it there.
    const rules = await coordinatorApi("/api/specialties/pain/triage");
    await coordinatorApi("/api/specialties/pain/triage", { method: "PUT", body: { ...rules, proforma_required: [...rules.proforma_required, "symptom_weeks"] } });
    await physio.expectConsole(/status of 422/, "the booking without symptom weeks is refused with 422, which Chromium logs", async () => {
      await physio.click("#book-submit");
      await physio.waitForSelector(".field.invalid input[name=symptom_weeks]");
    });
    assert.match(await physio.locator(".field.invalid", { has: physio.locator("input[name=symptom_weeks]") }).locator(".field-error").textContent(), /requires symptom duration/);
    assert.equal(await physio.evaluate(() => document.activeElement?.name), "symptom_weeks");
    await screenshotBoth(physio, "book-proforma-errors");
    await physio.getByLabel(/^Symptom duration in weeks/).fill("20");
    await screenshotBoth(physio, "book-proforma");
    await physio.click("#book-submit");
    await physio.waitForSelector("#booked");
    assert.match(await physio.textContent("#booked-heading"), /awaiting triage/);
    assert.match(await physio.textContent("#booked"), /not on the agenda yet/);
    const mine = (await (await apiAs("practitioner"))("/api/cases?mine=true")).find((c) => c.patient.family_name === "Proformacase");
    assert.equal(mine.state, "awaiting_triage");
    assert.equal(mine.referral_received_on, RECEIVED);
    assert.deepEqual(mine.conservative_care, [{ kind: "physiotherapy", weeks: 8 }]);
    assert.deepEqual(mine.start_back, { total: 6, psychosocial: 4 });
    assert.equal(mine.symptom_weeks, 20);
    assert.ok(!(await coordinatorApi(`/api/sessions/${session.id}`)).agenda.some((c) => c.id === mine.id), "not on the agenda before triage");

    // ---- The coordinator returns it from the triage queue.
    const coordinator = await as(browser, "coordinator");
    await coordinator.getByRole("link", { name: "Triage" }).click();
    const item = coordinator.locator(`article.triage-item[data-case="${mine.id}"]`);
    await item.waitFor();
    const itemText = await item.textContent();
    assert.match(itemText, /waiting \d+ min/);
    assert.match(itemText, /Morgan Proformacase/);
    assert.match(itemText, new RegExp(IMAGING.replace(/[/]/g, "\\/")));
    assert.match(itemText, /6 of 9, psychosocial 4 of 5/);
    assert.match(itemText, /high risk/);
    assert.match(itemText, /Physiotherapy, 8 weeks/);
    // Oldest first: the demo's bookings came before it.
    const order = await coordinator.$$eval("article.triage-item", (els) => els.map((e) => e.dataset.case));
    assert.equal(order.at(-1), mine.id, "the newest booking is last");
    await screenshotBoth(coordinator, "triage");
    await item.getByLabel("Return as not ready").check();
    await item.getByLabel("Reason for returning").selectOption("incomplete_proforma");
    await item.getByLabel(/Note to the referrer/).fill(NOTE);
    await item.getByRole("button", { name: "Return to the referrer" }).click();
    await coordinator.waitForSelector("#triage-done:not([hidden])");
    assert.match(await coordinator.textContent("#triage-done"), /returned to the referrer/);
    await item.waitFor({ state: "detached" });

    // ---- The practitioner sees it returned, edits and resubmits.
    await physio.goto("/#/cases");
    const row = physio.locator(`tr.case-row[data-case="${mine.id}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /returned/);
    assert.match(await row.textContent(), /Proforma incomplete/);
    await screenshotBoth(physio, "cases-returned");
    await row.getByRole("link", { name: /Edit and resubmit/ }).click();
    await physio.waitForSelector("#returned");
    assert.equal(await physio.textContent("#return-reason"), "Proforma incomplete");
    assert.equal(await physio.textContent("#return-note"), NOTE);
    assert.match(await physio.textContent("#proforma-facts"), /MRI/);
    await physio.click("#edit-resubmit");
    await physio.waitForSelector("#resubmit-form");
    assert.equal(await physio.evaluate(() => document.activeElement?.id), "resubmit-h");
    // Prefilled with what was sent.
    const rf = physio.locator("#resubmit-form");
    assert.equal(await rf.getByLabel("Question for the MDT").inputValue(), QUESTION);
    assert.equal(await rf.getByLabel("Body region").inputValue(), "lumbar spine");
    assert.equal(await rf.getByLabel("Side").inputValue(), "left");
    assert.equal(await rf.getByLabel("Date the referral was received").inputValue(), RECEIVED);
    assert.equal(await rf.getByLabel("Report summary of imaging 1").inputValue(), IMAGING);
    assert.equal(await rf.getByLabel("Weeks of treatment 1").inputValue(), "8");
    assert.equal(await rf.getByLabel("STarT Back total score (0–9) (required)").inputValue(), "6");
    assert.ok(await rf.getByLabel(/The patient agrees/).isChecked());
    await rf.getByLabel(/^Medication tried for pain/).fill(MEDICATION_2);
    await rf.locator("#conservative_care-add").click();
    await rf.getByLabel("Treatment 2", { exact: true }).selectOption("analgesia");
    await rf.getByLabel("Weeks of treatment 2").fill("3");
    await screenshotBoth(physio, "case-resubmit");
    await physio.click("#resubmit-submit");
    await physio.waitForSelector("#case-status:not([hidden])");
    assert.match(await physio.textContent("#case-status"), /Resubmitted/);
    assert.match(await physio.textContent(".page-head .tag"), /awaiting triage/);
    assert.ok(await physio.isVisible("#awaiting-triage"));

    // ---- The chair accepts it.
    const chair = await as(browser, "consultant");
    await chair.getByRole("link", { name: "Triage" }).click();
    const again = chair.locator(`article.triage-item[data-case="${mine.id}"]`);
    await again.waitFor();
    assert.match(await again.textContent(), /amitriptyline/);
    assert.match(await again.textContent(), /Analgesia, 3 weeks/);
    await again.getByLabel("Accept onto the agenda").check();
    await again.getByRole("button", { name: "Accept" }).click();
    await chair.waitForSelector("#triage-done:not([hidden])");
    assert.match(await chair.textContent("#triage-done"), /accepted onto the agenda/);
    const accepted = await coordinatorApi(`/api/cases/${mine.id}`);
    assert.equal(accepted.state, "booked");
    assert.equal(accepted.referral_received_on, RECEIVED, "the waiting-time clock keeps its start");
    assert.equal(accepted.medication_tried, MEDICATION_2);
    assert.ok((await coordinatorApi(`/api/sessions/${session.id}`)).agenda.some((c) => c.id === mine.id), "on the agenda");
    await physio.goto("/#/cases");
    await physio.locator(`tr.case-row[data-case="${mine.id}"]`, { hasText: "booked" }).waitFor();
    assertClean(browser);

    // ---- The trainee: the case is on the teaching session's agenda, de-identified, and
    // nothing of the proforma reaches the trainee's pages, API answers or live frames.
    const trainee = await as(browser, "trainee");
    const received = [];
    trainee.on("response", async (r) => {
      if (new URL(r.url()).pathname.startsWith("/api/")) received.push(await r.text().catch(() => ""));
    });
    trainee.on("websocket", (ws) => ws.on("framereceived", ({ payload }) => received.push(String(payload))));
    await trainee.goto(`/#/meeting/${session.id}`);
    await trainee.waitForSelector(`#agenda li[data-case-id="${mine.id}"]`);
    const pageText = [await trainee.evaluate(() => document.body.innerText + document.body.innerHTML)];
    await trainee.goto(`/#/cases/${mine.id}`);
    await trainee.waitForSelector(".page-head h1");
    assert.match(await trainee.textContent("h1"), /^Case \d+ · M · /);
    assert.equal(await trainee.locator("#proforma-facts").count(), 0, "no referral section for trainees");
    pageText.push(await trainee.evaluate(() => document.body.innerText + document.body.innerHTML));
    const secrets = [RECEIVED, IMAGING_DATE, IMAGING, "disc protrusion", MEDICATION_2, "amitriptyline", NOTE, "Proformacase", mine.patient.nhs_number,
      '"referral_received_on"', '"referral_source"', '"medication_tried"', '"return_note"', '"imaging"', '"conservative_care"', '"start_back"', '"symptom_weeks"'];
    for (const text of [...pageText, ...received]) {
      for (const s of secrets) assert.ok(!text.includes(s), `the trainee received ${s}`);
    }
    assert.ok(received.some((t) => t.includes(mine.id)), "the trainee's answers did include the case");
    await screenshotBoth(trainee, "case-trainee");
    assertClean(browser);
  } finally {
    await browser.close();
  }
});


// Listed, not discussed: the coordinator lists a booking with one of the specialty's
// standard plans from the triage queue; the referrer sees it listed; in the meeting room
// it is in its own section under the agenda (de-identified for the trainee), not among
// the cases to discuss, and the chair has one action that confirms the listed cases'
// standard outcomes together (the live `confirm_listed` command with their ids).
test("a listed case shows in its own section of the meeting, with the chair's one confirmation", async () => {
  const coordinatorApi = await apiAs("coordinator");
  const session = (await coordinatorApi("/api/sessions?specialty=pain")).filter((s) => s.teaching).sort((a, b) => a.starts_at.localeCompare(b.starts_at))[0];
  const waiting = (await coordinatorApi("/api/triage")).find((i) => i.session.id === session.id);
  assert.ok(waiting, "the demo's neck case waits for triage in the teaching session");
  const listed = waiting.case;
  const rules = await coordinatorApi("/api/specialties/pain/triage");
  const plan = rules.standard_plans.find((p) => p.code === "discharge_self_management");
  assert.ok(plan, "the demo's pain specialty has the self-management plan");

  const browser = await launch();
  try {
    const coordinator = await as(browser, "coordinator");
    await coordinator.goto("/#/triage");
    await coordinator.selectOption("#triage-specialty", "pain");
    const item = coordinator.locator(`article.triage-item[data-case="${listed.id}"]`);
    await item.waitFor();
    await item.getByLabel(/List, not discussed/).check();
    await item.getByLabel("Standard plan", { exact: true }).selectOption(plan.code);
    assert.equal(await item.locator(".decision-fields:not([hidden]) .hint").textContent(), plan.plan, "the plan's text is shown");
    await item.getByRole("button", { name: "List, not discussed" }).click();
    await coordinator.waitForSelector("#triage-done:not([hidden])");
    assert.match(await coordinator.textContent("#triage-done"), /listed, not discussed/);
    const after = await coordinatorApi(`/api/cases/${listed.id}`);
    assert.equal(after.state, "listed");
    assert.equal(after.standard_plan, plan.code);

    // The referrer sees it listed.
    const physio = await as(browser, "practitioner");
    await physio.goto("/#/cases");
    const row = physio.locator(`tr.case-row[data-case="${listed.id}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /listed/);
    assert.match(await row.textContent(), /Standard plan, confirmed at the meeting/);

    // The meeting room: the chair and the trainee.
    await startSoon(session.id);
    const chair = await as(browser, "consultant");
    chair.on("dialog", (d) => d.accept());
    const sent = [];
    chair.on("websocket", (ws) => ws.on("framesent", ({ payload }) => sent.push(String(payload))));
    const trainee = await as(browser, "trainee");
    for (const page of [chair, trainee]) {
      await page.goto(`/#/meeting/${session.id}`);
      await page.waitForSelector(`#listed li[data-case-id="${listed.id}"]`);
      assert.equal(await page.locator(`#agenda li[data-case-id="${listed.id}"]`).count(), 0, "not among the cases to discuss");
      assert.match(await page.textContent("#listed-section h3"), /Listed, not discussed/);
    }
    await chair.waitForSelector(`#listed li[data-case-id="${listed.id}"] :text("Standard plan: ${plan.title}")`);
    assert.match(await trainee.textContent(`#listed li[data-case-id="${listed.id}"]`), /^Case \d+ · F · /, "de-identified for the trainee");
    assert.equal(await trainee.locator("#confirm-listed").count(), 0, "only the chair confirms");
    assert.match(await chair.textContent("#listed-controls"), /once the meeting is open/);

    await chair.click("#open-meeting");
    await chair.waitForSelector("#meeting-state:text('live')");
    const confirmButton = chair.locator("#confirm-listed");
    await confirmButton.waitFor();
    assert.equal(await confirmButton.textContent(), "Confirm standard outcomes (1)");
    await screenshotBoth(chair, "meeting-listed");
    await screenshotBoth(trainee, "meeting-listed-trainee");
    await confirmButton.click();
    const command = await until("the confirm_listed command", () =>
      sent.map((f) => JSON.parse(f)).find((m) => m.type === "command" && m.command?.kind === "confirm_listed"));
    assert.deepEqual(command.command.case_ids, [listed.id]);
    assert.ok(command.id, "sent as a command with an id, answered by the server");
    assertClean(browser);
  } finally {
    await browser.close();
  }
});

// Acceptance (DESIGN §4 flow 2): a physiotherapist finds the next rheumatology session in
// the schedule and books a case. A wrong NHS number is caught in the browser before
// anything is sent; red flags point to the urgent pathway; an image is uploaded with
// visible progress; the booking then shows in "My cases" and on its case page.
// Needs a fresh demo database (the booking changes data).
import { test } from "node:test";
import assert from "node:assert/strict";
import { apiAs, as, assertClean, launch, screenshotBoth } from "./lib.mjs";

const DEMO_NHS = ["9912003888", "9449305552", "9434765919"];

// A 1×1 PNG.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
  "base64",
);

/** Modulus 11 (DESIGN §9), computed here independently of the page's own nhs.js. */
function validNhs(nhs) {
  const d = [...nhs].map(Number);
  const sum = d.slice(0, 9).reduce((a, x, i) => a + x * (10 - i), 0);
  const check = (11 - (sum % 11)) % 11;
  return d.length === 10 && check !== 10 && check === d[9];
}

test("a physiotherapist books a case with inline validation, an attachment and a confirmation", async () => {
  const NEW_NHS = "9876543210";
  const BAD_NHS = "987 654 3211";
  assert.ok(validNhs(NEW_NHS), "the test's own NHS number passes Modulus 11");
  assert.ok(!validNhs(BAD_NHS.replaceAll(" ", "")), "the wrong one fails it");

  const browser = await launch();
  try {
    const page = await as(browser, "practitioner");
    const bookings = [];
    page.on("request", (r) => {
      if (r.method() === "POST" && /\/api\/sessions\/[^/]+\/cases$/.test(new URL(r.url()).pathname)) bookings.push(r);
    });

    // The schedule opens at the week of the next session; filter to rheumatology.
    await page.goto("/#/schedule");
    await page.waitForSelector("#week .slot");
    await page.selectOption("#specialty-filter", "rheumatology");
    const slot = page.locator('.slot[data-specialty="rheumatology"]').first();
    await slot.waitFor();
    assert.match(await slot.textContent(), /Rheumatology MDT/);
    assert.match(await slot.textContent(), /7 of 8 places free/, "the demo books one case into it");
    await screenshotBoth(page, "schedule");
    await slot.getByRole("link", { name: /Book a case/ }).click();

    await page.waitForSelector("#book-form");
    assert.equal(await page.textContent("h1"), "Book a case");
    assert.match(await page.textContent(".session-summary"), /Rheumatology MDT/);

    // Fill the form with a wrong check digit; leaving the field shows the error.
    await page.getByLabel("NHS number").fill(BAD_NHS);
    await page.getByLabel("Given name").click();
    const nhsError = page.locator("#book-form .field.invalid .field-error").first();
    await nhsError.waitFor();
    assert.match(await nhsError.textContent(), /check digit/);
    assert.equal(await page.getByLabel("NHS number").getAttribute("aria-invalid"), "true");

    await page.getByLabel("Given name").fill("Robin");
    await page.getByLabel("Family name").fill("Testpatient");
    await page.getByLabel("Date of birth").fill("1968-05-17");
    await page.getByLabel("Sex").selectOption("female");
    await page.getByLabel("GP practice code").fill("b82005");
    await page.getByLabel("Question for the MDT").fill("Inflammatory back pain in a 56-year-old with raised CRP: is axial spondyloarthritis likely, and is MRI of the sacroiliac joints indicated?");
    await page.getByLabel("History summary").fill("Six months of early-morning stiffness easing with exercise; good response to NSAIDs; HLA-B27 awaited.");
    await page.getByLabel("Urgency").selectOption("routine");
    await page.getByLabel("Body region").selectOption("lower back");
    // The proforma: a back case needs its STarT Back score; the patient agrees.
    await page.getByLabel(/^STarT Back total score/).fill("4");
    await page.getByLabel("Psychosocial subscore (0–5)").fill("2");
    await page.getByLabel(/The patient agrees/).check();

    // A red flag shows the urgent-pathway warning; unticking it clears it.
    const flag = page.getByLabel(/cauda equina/);
    await flag.check();
    await page.waitForSelector("#red-flag-warning:not([hidden])");
    assert.match(await page.textContent("#red-flag-warning"), /urgent pathway/);
    await page.click("#book-submit");
    await page.waitForSelector("#book-error:not([hidden])");
    assert.match(await page.textContent("#book-error"), /urgent/);
    await flag.uncheck();
    assert.ok(await page.isHidden("#red-flag-warning"));

    // Submitting with the wrong NHS number sends nothing and puts focus on the field.
    await page.click("#book-submit");
    await page.waitForSelector("#book-error:not([hidden])");
    assert.equal(await page.evaluate(() => document.activeElement?.name), "nhs_number");
    assert.match(await nhsError.textContent(), /check digit/);
    assert.equal(bookings.length, 0, "no booking request was sent");
    await screenshotBoth(page, "book-errors");

    // Fix it and attach an image.
    await page.getByLabel("NHS number").fill("987 654 3210");
    await page.getByLabel("Given name").click();
    assert.equal(await page.getByLabel("NHS number").getAttribute("aria-invalid"), "false");
    await page.getByLabel("Attachments (optional)").setInputFiles({ name: "sacroiliac-mri.png", mimeType: "image/png", buffer: PNG });
    assert.match(await page.textContent("#file-list"), /sacroiliac-mri\.png/);
    await screenshotBoth(page, "book");

    // Two submits in quick succession book once.
    await page.evaluate(() => {
      const form = document.getElementById("book-form");
      form.requestSubmit();
      form.requestSubmit();
    });
    await page.waitForSelector("#booked");
    await page.waitForFunction(() => /uploaded/i.test(document.getElementById("upload-status")?.textContent || "") && !/Uploading/.test(document.getElementById("upload-status").textContent));
    assert.match(await page.textContent("#upload-status"), /All 1 attachment uploaded/);
    assert.equal(await page.locator("#uploads progress").evaluate((p) => p.value), 1);
    assert.equal(bookings.length, 1, "one booking request");
    assert.ok(bookings[0].headers()["idempotency-key"], "the booking carries an Idempotency-Key");
    const booked = await page.textContent("#booked");
    assert.match(booked, /Case booked/);
    assert.match(booked, /Rheumatology MDT/);
    assert.match(booked, /987 654 3210/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), "booked-heading");
    await screenshotBoth(page, "booked");

    // My cases lists it with its NHS number and session.
    await page.getByRole("link", { name: "My cases" }).first().click();
    await page.waitForSelector("table.cases");
    const row = page.locator("tr.case-row", { hasText: "987 654 3210" });
    await row.waitFor();
    assert.match(await row.textContent(), /Robin Testpatient/);
    assert.match(await row.textContent(), /Rheumatology MDT/);
    assert.match(await row.textContent(), /awaiting triage/, "a new booking waits for triage");
    await screenshotBoth(page, "cases");

    // Its case page shows the details and the uploaded image.
    await row.getByRole("link", { name: "Robin Testpatient", exact: true }).click();
    await page.waitForSelector("#attachments li");
    assert.equal(await page.textContent("h1"), "Robin Testpatient");
    assert.match(await page.textContent("#attachments"), /sacroiliac-mri\.png/);
    assert.match(await page.textContent("main"), /Rheumatology MDT/);
    const [file] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: /Download sacroiliac-mri\.png/ }).click()]);
    assert.equal(file.suggestedFilename(), "sacroiliac-mri.png");
    assert.ok(await page.isVisible("#withdraw"), "the referrer may withdraw it");
    await screenshotBoth(page, "case");

    assert.deepEqual(page.problems, []);
    assertClean(browser);
  } finally {
    await browser.close();
  }
});

// One NHS number is one patient (issue 13): a booking whose NHS number is on record with
// another name or date of birth is refused, and the page shows the recorded details to
// the referrer, who uses them, or confirms a change of name; only a coordinator may
// correct a recorded date of birth.
test("a known NHS number with other details is refused, and can be put right", async () => {
  const physioApi = await apiAs("practitioner");
  const rheum = (await physioApi("/api/sessions?specialty=rheumatology")).sort((a, b) => a.starts_at.localeCompare(b.starts_at));
  // The demo physio booked Alex Example (the first rheumatology session) and Sam Sample
  // (the first spinal one); the later rheumatology sessions have neither.
  const [, second, third] = rheum;

  const browser = await launch();
  try {
    const fillPatient = async (page, sessionId, p) => {
      // A fresh form (the confirmation of the last booking stays at the same address).
      await page.goto("/#/schedule");
      await page.goto(`/#/book/${sessionId}`);
      await page.waitForSelector("#book-form");
      await page.getByLabel("NHS number").fill(p.nhs);
      await page.getByLabel("Given name").fill(p.given);
      await page.getByLabel("Family name").fill(p.family);
      await page.getByLabel("Date of birth").fill(p.dob);
      await page.getByLabel("Sex").selectOption(p.sex);
      await page.getByLabel("GP practice code").fill("A81001");
      await page.getByLabel("Question for the MDT").fill("Persistent pain despite a full course of physiotherapy: what next?");
      await page.getByLabel("History summary").fill("Twelve weeks of exercise therapy with little change.");
      await page.getByLabel("Body region").selectOption("knee");
      await page.getByLabel(/The patient agrees/).check();
    };
    const refused = (page) =>
      page.expectConsole(/status of 409/, "the conflicting booking is refused with 409, which Chromium logs", async () => {
        await page.click("#book-submit");
        await page.waitForSelector("#patient-conflict:not([hidden])");
      });

    // The practitioner: the name differs (Alexandra for Alex). The record is shown, with
    // both ways out; using it fills the form, and the case books.
    const page = await as(browser, "practitioner");
    await fillPatient(page, second.id, { nhs: "991 200 3888", given: "Alexandra", family: "Example", dob: "1971-03-14", sex: "female" });
    await refused(page);
    assert.ok(await page.evaluate(() => document.getElementById("patient-details").contains(document.getElementById("patient-conflict"))), "shown in the patient section");
    assert.equal(await page.textContent("#recorded-name"), "Alex Example");
    assert.match(await page.textContent("#recorded-dob"), /14 Mar 1971/);
    assert.ok(await page.isVisible("#use-recorded"));
    assert.ok(await page.isVisible("#confirm-name-change"), "a name change may be confirmed");
    assert.equal(await page.locator("#confirm-correction").count(), 0, "a date of birth is not in question");
    await screenshotBoth(page, "book-patient-conflict");

    // The date of birth differs as well: a practitioner may not correct it.
    await page.getByLabel("Date of birth").fill("1971-04-14");
    await refused(page);
    assert.equal(await page.locator("#confirm-name-change").count(), 0);
    assert.equal(await page.locator("#confirm-correction").count(), 0, "only a coordinator corrects a date of birth");
    assert.match(await page.textContent("#patient-conflict"), /Only a coordinator/);
    await page.click("#use-recorded");
    assert.equal(await page.getByLabel("Given name").inputValue(), "Alex");
    assert.equal(await page.getByLabel("Date of birth").inputValue(), "1971-03-14");
    await page.click("#book-submit");
    await page.waitForSelector("#booked");
    assert.match(await page.textContent("#booked"), /Alex Example/);

    // Sam Sample has changed their name: confirmed, the case books under the new name.
    await fillPatient(page, second.id, { nhs: "944 930 5552", given: "Sam", family: "Newname", dob: "1985-09-02", sex: "male" });
    await refused(page);
    await page.click("#confirm-name-change");
    await page.waitForSelector("#booked");
    assert.match(await page.textContent("#booked"), /Sam Newname/);
    assertClean(browser);

    // The coordinator may correct a recorded date of birth (Jo Specimen, 1962-11-30).
    const coordinator = await as(browser, "coordinator");
    await fillPatient(coordinator, third.id, { nhs: "943 476 5919", given: "Jo", family: "Specimen", dob: "1962-11-03", sex: "female" });
    await refused(coordinator);
    assert.match(await coordinator.textContent("#recorded-dob"), /30 Nov 1962/);
    await coordinator.click("#confirm-correction");
    await coordinator.waitForSelector("#booked");
    assert.match(await coordinator.textContent("#booked"), /Jo Specimen/);
    assertClean(browser);
  } finally {
    await browser.close();
  }
});

test("the NHS number hint is not a number the demo data uses", async () => {
  const browser = await launch();
  try {
    const page = await as(browser, "practitioner");
    await page.goto("/#/schedule");
    await page.locator(".slot a", { hasText: "Book a case" }).first().click();
    await page.waitForSelector("#book-form");
    const hint = await page.locator("#book-form .field", { hasText: "NHS number" }).locator(".hint").textContent();
    const example = hint.match(/\d{3} \d{3} \d{4}/)?.[0].replaceAll(" ", "");
    assert.ok(example && validNhs(example), `the hint gives a valid example: ${hint}`);
    assert.ok(!DEMO_NHS.includes(example), `${example} is a demo patient's NHS number`);
    assertClean(browser);
  } finally {
    await browser.close();
  }
});

// Invitations, the lobby and the triage data (issue 15): in the meeting room the chair
// invites a practitioner of the specialty with no case as a learner and a consultant of
// another specialty as a guest (a refusal shown in words); the learner finds the meeting
// on the schedule and opens it straight away; the guest waits in the lobby, the chair sees
// their name, role and organisation and admits them, and the guest sees the agenda; a
// second guest is turned away and told so; withdrawing an invitation removes it from the
// list. On the admin page a coordinator makes a proforma field required, adds a standard
// plan (a bad code shown next to it), and the booking page marks the field required.
// Needs a fresh demo database (the test changes data).
import { test } from "node:test";
import assert from "node:assert/strict";
import { acceptWaiting, apiAs, as, assertClean, launch, open, screenshotBoth, signIn, startSoon, until } from "./lib.mjs";

const PASSWORD = process.env.MDT_E2E_PASSWORD;

/** Opens a signed-in page for an account the test made. */
async function asUser(browser, email, role) {
  const page = await open(browser);
  page.role = role;
  await signIn(page, email);
  return page;
}

test("the chair invites a learner and a guest; the guest waits in the lobby and is admitted; withdrawing removes an invitation", async () => {
  const coordinator = await apiAs("coordinator");
  // The demo's spinal session: its chair is the demo consultant, and it holds a case.
  const session = (await coordinator("/api/sessions?specialty=spinal")).sort((a, b) => a.starts_at.localeCompare(b.starts_at))[0];
  assert.ok(session, "the demo has a spinal session");
  await acceptWaiting(session.id);
  const agenda = (await coordinator(`/api/sessions/${session.id}`)).agenda;
  assert.ok(agenda.length >= 1, "the spinal session has a case on its agenda");
  const patient = agenda[0].patient;

  // A spinal practitioner with no case, and two rheumatologists (another specialty the
  // chair shares, so the chair's directory lists them) with their organisations.
  const people = {
    learner: { email: "lee.learner@example.org", name: "Lee Learner", role: "practitioner", specialties: ["spinal"] },
    guest: { email: "rhea.rheum@example.org", name: "Dr Rhea Rheum", role: "consultant", specialties: ["rheumatology"], organisation: "Northern Rheumatology Centre" },
    denied: { email: "dan.denied@example.org", name: "Dr Dan Denied", role: "consultant", specialties: ["rheumatology"], organisation: "Southern Joint Clinic" },
  };
  for (const p of Object.values(people)) p.id = (await coordinator("/api/users", { method: "POST", body: { ...p, password: PASSWORD } })).id;
  await startSoon(session.id);

  const browser = await launch();
  try {
    // ---- The chair's invitations panel in the meeting room.
    const chair = await as(browser, "consultant");
    chair.on("dialog", (d) => d.accept());
    await chair.goto(`/#/meeting/${session.id}`);
    await chair.waitForSelector("#invitations-panel:not([hidden]) #invite-person option[value]:not([value=''])", { state: "attached" });
    assert.equal(await chair.isVisible("#no-invitations"), true, "no one is invited yet");
    // Trainees are not offered for a session that is not a teaching one.
    const kinds = await chair.locator("#invite-kind option").evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(kinds, ["learner", "guest"]);

    // A refusal in words: a member of the specialty is not a guest.
    await chair.getByLabel("Person").selectOption(people.learner.id);
    assert.equal(await chair.getByLabel("Invite as").inputValue(), "learner", "a practitioner of the specialty is suggested as a learner");
    await chair.getByLabel("Invite as").selectOption("guest");
    await chair.expectConsole(/status of 422/, "inviting a member of the specialty as a guest is refused on purpose", async () => {
      await chair.click("#invite-submit");
      await chair.waitForSelector("#invite-error:not([hidden])");
    });
    assert.match(await chair.textContent("#invite-error"), /Lee Learner belongs to this session's specialty, so is not a guest/);

    await chair.getByLabel("Invite as").selectOption("learner");
    await chair.click("#invite-submit");
    await chair.waitForSelector(`#invitations li[data-user-id="${people.learner.id}"]`);
    assert.ok(await chair.isHidden("#invite-error"));
    await chair.getByLabel("Person").selectOption(people.guest.id);
    assert.equal(await chair.getByLabel("Invite as").inputValue(), "guest", "a consultant of another specialty is suggested as a guest");
    await chair.click("#invite-submit");
    await chair.waitForSelector(`#invitations li[data-user-id="${people.guest.id}"]`);
    await chair.getByLabel("Person").selectOption(people.denied.id);
    await chair.click("#invite-submit");
    await chair.waitForSelector(`#invitations li[data-user-id="${people.denied.id}"]`);
    const listed = await chair.textContent("#invitations");
    assert.match(listed, /Lee Learner.*learner/s);
    assert.match(listed, /Dr Rhea Rheum.*Northern Rheumatology Centre.*guest/s);
    // The invited are no longer offered.
    assert.equal(await chair.locator(`#invite-person option[value="${people.guest.id}"]`).count(), 0);
    const server = await coordinator(`/api/sessions/${session.id}/invitations`);
    assert.deepEqual(server.map((i) => [i.name, i.kind]), [["Lee Learner", "learner"], ["Dr Rhea Rheum", "guest"], ["Dr Dan Denied", "guest"]]);

    await chair.click("#open-meeting");
    await chair.waitForSelector("#meeting-state.state-live");
    await screenshotBoth(chair, "meeting-invitations");

    // ---- The learner finds the meeting on the schedule and opens it straight away.
    const learner = await asUser(browser, people.learner.email, "learner");
    await learner.goto("/#/schedule");
    const slot = learner.locator(`article[data-session="${session.id}"]`);
    await slot.waitFor();
    assert.match(await slot.textContent(), /invited as learner/);
    await slot.getByRole("link", { name: /^Join / }).click();
    await learner.waitForSelector(`#agenda li[data-case-id="${agenda[0].id}"]`);
    assert.match(await learner.textContent("#agenda"), new RegExp(patient.family_name));
    assert.ok(await learner.isHidden("#lobby-wait"), "a learner does not wait in the lobby");
    await chair.waitForSelector(`#participants li[data-user-id="${people.learner.id}"]`);

    // ---- The guest waits in the lobby; the chair sees who they are and admits them.
    const guest = await asUser(browser, people.guest.email, "guest");
    await guest.goto("/#/schedule");
    const guestSlot = guest.locator(`article[data-session="${session.id}"]`);
    await guestSlot.waitFor();
    assert.match(await guestSlot.textContent(), /invited as guest/);
    await guestSlot.getByRole("link", { name: /^Join / }).click();
    await guest.waitForSelector("#lobby-wait:not([hidden])");
    assert.match(await guest.textContent("#lobby-wait h2"), /Waiting for the chair to let you in/);
    assert.ok(await guest.isHidden("#room"), "nothing of the meeting shows in the lobby");
    assert.equal(await guest.locator("#agenda li").count(), 0);

    await chair.waitForSelector(`#lobby li[data-user-id="${people.guest.id}"]`);
    const waiting = await chair.textContent(`#lobby li[data-user-id="${people.guest.id}"]`);
    assert.match(waiting, /Dr Rhea Rheum/);
    assert.match(waiting, /consultant/);
    assert.match(waiting, /Northern Rheumatology Centre/);
    await screenshotBoth(chair, "meeting-lobby");
    await chair.getByRole("button", { name: "Admit Dr Rhea Rheum" }).click();
    await guest.waitForSelector(`#agenda li[data-case-id="${agenda[0].id}"]`);
    assert.ok(await guest.isHidden("#lobby-wait"));
    assert.match(await guest.textContent("#agenda"), new RegExp(patient.family_name), "a guest sees the agenda identified");
    // A guest decides nothing: no outcome form, no chair controls.
    assert.equal(await guest.locator("#agenda button", { hasText: "Outcome" }).count(), 0);
    assert.equal(await guest.locator("#invitations-panel:not([hidden])").count(), 0);
    await chair.waitForSelector(`#participants li[data-user-id="${people.guest.id}"]`);
    await until("the lobby to empty", async () => chair.isHidden("#lobby-panel"));

    // ---- A second guest is turned away and told so.
    const denied = await asUser(browser, people.denied.email, "denied guest");
    await denied.goto(`/#/meeting/${session.id}`);
    await denied.waitForSelector("#lobby-wait:not([hidden])");
    await chair.getByRole("button", { name: "Deny Dr Dan Denied entry" }).click();
    await denied.waitForSelector("#meeting-error:not([hidden])");
    assert.match(await denied.textContent("#meeting-error"), /The chair did not let you into this meeting/);
    assert.ok(await denied.isHidden("#lobby-wait"));

    // ---- Withdrawing the learner's invitation removes it from the list.
    await chair.getByRole("button", { name: "Withdraw the invitation of Lee Learner" }).click();
    await chair.waitForSelector(`#invitations li[data-user-id="${people.learner.id}"]`, { state: "detached" });
    assert.doesNotMatch(await chair.textContent("#invitations"), /Lee Learner/);
    const left = await coordinator(`/api/sessions/${session.id}/invitations`);
    assert.deepEqual(left.map((i) => i.name), ["Dr Rhea Rheum", "Dr Dan Denied"]);
    // The learner is shown out of the meeting.
    await learner.waitForSelector("#meeting-error:not([hidden])");
    assert.match(await learner.textContent("#meeting-error"), /no longer a participant/);

    assertClean(browser);
  } finally {
    await browser.close();
  }
});

test("the coordinator makes a proforma field required and adds a standard plan; the booking page marks the field", async () => {
  const coordinator = await apiAs("coordinator");
  const session = (await coordinator("/api/sessions?specialty=rheumatology")).filter((s) => s.state === "scheduled")
    .sort((a, b) => a.starts_at.localeCompare(b.starts_at)).at(-1);
  assert.ok(session, "the demo has a rheumatology session to book into");
  const browser = await launch();
  try {
    const admin = await as(browser, "coordinator");
    await admin.goto("/#/admin");
    await admin.waitForSelector("#triage-rules-form");
    await admin.getByLabel("Specialty", { exact: true }).nth(0).waitFor();
    await admin.locator("#triage-specialty").selectOption("rheumatology");
    await admin.waitForSelector("#triage-rules-body:not([hidden])");
    assert.equal(await admin.isChecked("#requires-symptom_weeks"), false);
    await admin.getByLabel("Symptom duration").check();

    // A standard plan with a bad code is refused, next to its field.
    const before = await admin.locator("#standard-plans .standard-plan").count();
    await admin.click("#standard-plan-add");
    const n = before + 1;
    await admin.getByLabel(`Code of plan ${n}`).fill("Not Snake");
    await admin.getByLabel(`Title of plan ${n}`).fill("Rheumatology nurse review");
    await admin.getByLabel(`Plan ${n} (the signed outcome's text)`).fill("Review by the rheumatology nurse specialist within four weeks; continue current DMARD.");
    await admin.expectConsole(/status of 422/, "a standard plan code that is not snake_case is refused on purpose", async () => {
      await admin.click("#triage-rules-submit");
      await admin.waitForSelector("#standard-plans .field.invalid");
    });
    assert.match(await admin.locator("#standard-plans .field.invalid").first().textContent(), new RegExp(`Standard plan ${n}: Must be a unique snake_case code`));
    assert.equal(await admin.evaluate(() => document.activeElement?.name), "code");
    await admin.getByLabel(`Code of plan ${n}`).fill("nurse_review");
    await admin.click("#triage-rules-submit");
    await admin.waitForSelector("#admin-status:not([hidden])");
    assert.match(await admin.textContent("#admin-status"), /Triage data saved for Rheumatology: requires .*symptom duration/);
    const rules = await coordinator("/api/specialties/rheumatology/triage");
    assert.ok(rules.proforma_required.includes("symptom_weeks"));
    assert.ok(rules.standard_plans.some((p) => p.code === "nurse_review" && p.title === "Rheumatology nurse review"));
    await screenshotBoth(admin, "admin-triage-data");

    // Removing a row and saving removes the plan.
    await admin.click(`button[aria-label="Remove standard plan ${n}"]`);
    await admin.click("#triage-rules-submit");
    await until("the plan to be removed", async () => !(await coordinator("/api/specialties/rheumatology/triage")).standard_plans.some((p) => p.code === "nurse_review"));

    // ---- The booking page marks the field required.
    const physio = await as(browser, "practitioner");
    await physio.goto(`/#/book/${session.id}`);
    await physio.waitForSelector("#book-form #proforma");
    assert.match(await physio.textContent("#proforma-required"), /symptom duration/);
    assert.match(await physio.locator("#proforma label", { hasText: "Symptom duration in weeks" }).textContent(), /\(required\)/);
    assertClean(browser);
  } finally {
    await browser.close();
  }
});

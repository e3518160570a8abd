// Administration for coordinators: accounts (created, deactivated and reactivated, a
// password reset to a one-time password), specialties (their quorum, triage data:
// required proforma fields and standard plans, and waiting-time targets), weekly
// series and one-off sessions, and patient records whose cases disagree. Each form checks
// what it can before sending and shows the server's refusal against the field it names.
import { api } from "../api.js";
import { errorBox, field, fill, h, humanise, time } from "../ui.js";
import { busy, checkedForm, list, select, stillHere, textField } from "../forms.js";
import { checkText, formatNhsNumber, parseDateOfBirth, parseNhsNumber } from "../nhs.js";
import { triageRulesEditor } from "../triage-rules.js";
import { targetsEditor } from "../targets-editor.js";

const birthDay = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
/** A date of birth for people, e.g. "2 Mar 1961" (a calendar day: no zone shift). */
const dobText = (s) => (/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(s || "") ? birthDay.format(new Date(`${s}T00:00:00Z`)) : s || "");

const ROLES = [
  ["practitioner", "Practitioner"],
  ["consultant", "Consultant"],
  ["trainee", "Trainee"],
  ["coordinator", "Coordinator"],
];
const title = (slug) => humanise(slug).replace(/^./, (c) => c.toUpperCase());
const localDate = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;

/** A whole number in [min, max], or an error message. */
const whole = (min, max) => (v) => {
  const s = String(v).trim();
  if (!s) return "enter a number";
  if (!/^[0-9]+$/.test(s)) return "must be a whole number";
  const n = Number(s);
  return n < min || n > max ? `must be between ${min} and ${max}` : null;
};

function numberField(form, name, label, min, max, value, hint) {
  const control = h("input", { name, type: "number", min, max, step: 1, value: String(value), inputmode: "numeric" });
  return form.add(name, field(label, control, hint), whole(min, max));
}

/** Scrolls to a section and moves focus to its heading. */
function jump(id) {
  const heading = document.querySelector(`#${id} h2`);
  if (!heading) return;
  heading.setAttribute("tabindex", "-1");
  heading.scrollIntoView({ block: "start" });
  heading.focus({ preventScroll: true });
}

/** Shows a refusal against its field, or in the form's alert. */
function refuse(form, box, err) {
  if (!form.showServerError(err)) box.show(err);
}

export async function render(main, ctx = {}) {
  const me = ctx.user?.id;
  const here = stillHere();
  const status = h("p", { id: "admin-status", class: "success", role: "status", hidden: true });
  const say = (text) => {
    status.textContent = text;
    status.hidden = !text;
  };
  let users = await api("/api/users");
  let specialties = await api("/api/specialties");

  // ---- Users ----------------------------------------------------------------------
  const usersBody = h("tbody");
  const accountBox = errorBox("account-error");
  // A reset's one-time password, shown once, here only, until the next change.
  const oneTime = h("div", { id: "one-time-password", class: "card", role: "status", hidden: true });
  const reload = async () => {
    users = await api("/api/users");
    showUsers();
    refreshChairs();
  };
  /** Runs one account change from the row's button; refusals go to the accounts' alert. */
  const change = async (button, u, action, doing) => {
    accountBox.show(null);
    oneTime.hidden = true;
    say("");
    try {
      const done = await busy(button, doing, () => api(`/api/users/${u.id}/${action}`, { method: "POST" }));
      await reload();
      return done;
    } catch (err) {
      accountBox.show(err);
      if (["already_active", "already_inactive"].includes(err.code)) await reload().catch(() => {});
      return null;
    }
  };
  /** Deactivation asks once more in the row: it signs the person out everywhere at once. */
  const deactivateButtons = (u, cell) => {
    const start = h("button", { type: "button", class: "secondary", "aria-label": `Deactivate ${u.name}` }, "Deactivate");
    start.addEventListener("click", () => {
      const confirm = h("button", { type: "button", class: "danger", "aria-label": `Confirm deactivation of ${u.name}` }, "Confirm deactivation");
      const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
      const note = h("span", { class: "hint" }, `${u.name} is signed out everywhere and leaves any meeting at once. `);
      confirm.addEventListener("click", async () => {
        if (await change(confirm, u, "deactivate", "Deactivating…")) say(`${u.name}'s account is deactivated.`);
      });
      cancel.addEventListener("click", () => {
        fill(cell, actions(u, cell));
        cell.querySelector("button")?.focus();
      });
      fill(cell, note, confirm, " ", cancel);
      confirm.focus();
    });
    return start;
  };
  const actions = (u, cell) => {
    if (u.id === me) return h("span", { class: "hint" }, "You");
    if (!u.active) {
      const reactivate = h("button", { type: "button", class: "secondary", "aria-label": `Reactivate ${u.name}` }, "Reactivate");
      reactivate.addEventListener("click", async () => {
        if (await change(reactivate, u, "reactivate", "Reactivating…")) say(`${u.name}'s account is active again.`);
      });
      return reactivate;
    }
    const reset = h("button", { type: "button", class: "secondary", "aria-label": `Reset password for ${u.name}` }, "Reset password");
    reset.addEventListener("click", async () => {
      const done = await change(reset, u, "reset-password", "Resetting…");
      if (!done) return;
      fill(
        oneTime,
        h("p", {}, `One-time password for ${u.name}: `, h("code", { id: "one-time-password-value" }, done.one_time_password)),
        h("p", { class: "hint" }, "Shown once. Give it to them by a separate, secure route: they choose their own password when they next sign in, and their current sign-ins have ended."),
      );
      oneTime.hidden = false;
    });
    return [deactivateButtons(u, cell), " ", reset];
  };
  const showUsers = () =>
    fill(
      usersBody,
      users.map((u) => {
        const cell = h("div", { class: "actions" });
        fill(cell, actions(u, cell));
        return h(
          "tr",
          { dataset: { email: u.email } },
          h("td", { "data-label": "Name" }, h("div", {}, u.name)),
          h("td", { "data-label": "Email" }, h("div", { class: "email" }, u.email)),
          h("td", { "data-label": "Role" }, h("div", {}, h("span", { class: `tag role-${u.role}` }, u.role))),
          h("td", { "data-label": "Specialties" }, h("div", {}, list(u.specialties.map(humanise)))),
          h("td", { "data-label": "Status" }, h("div", { class: "status" }, u.active ? (u.must_change_password ? "Active (password to change)" : "Active") : "Deactivated")),
          h("td", { "data-label": "Created" }, h("div", {}, time(u.created_at))),
          h("td", { "data-label": "Account" }, cell),
        );
      }),
    );
  showUsers();

  const uf = checkedForm();
  const ubox = errorBox("user-error");
  const uEmail = uf.add("email", field("Email", h("input", { name: "email", type: "email", autocomplete: "off" })), (v) =>
    /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/.test(String(v).trim()) ? null : "enter an email address such as jo.bloggs@nhs.net",
  );
  const uName = textField(uf, "name", "Full name", { attrs: { autocomplete: "off" } }, (v) => checkText(v, 100));
  const uRole = uf.add("role", field("Role", select({ name: "role" }, ROLES, "practitioner"), "Practitioners: FCPs, ESPs, physiotherapists, psychologists."), (v) => (v ? null : "choose a role"));
  const specialtyBoxes = h("div", { class: "checks" });
  const specialtySet = h(
    "fieldset",
    { id: "user-specialties", "aria-describedby": "user-specialties-error" },
    h("legend", {}, "Specialties"),
    specialtyBoxes,
    h("p", { class: "field-error", id: "user-specialties-error", hidden: true }),
  );
  const showSpecialtyBoxes = () =>
    fill(
      specialtyBoxes,
      specialties.map((s) => h("label", { class: "check", for: `us-${s}` }, h("input", { type: "checkbox", id: `us-${s}`, name: "specialties", value: s }), title(s))),
    );
  showSpecialtyBoxes();
  const chosenSpecialties = () => [...specialtyBoxes.querySelectorAll("input:checked")].map((i) => i.value);
  const specialtyError = (msg) => {
    const p = specialtySet.querySelector(".field-error");
    p.textContent = msg || "";
    p.hidden = !msg;
    specialtySet.classList.toggle("invalid", Boolean(msg));
  };
  const uOrganisation = textField(uf, "organisation", "Organisation (optional)", { max: 120, hint: "e.g. a guest's trust or service; shown to the chair when they wait in a meeting's lobby.", attrs: { autocomplete: "off" } }, (v) =>
    String(v).trim().length > 120 ? "must be at most 120 characters" : null,
  );
  const uPassword = uf.add(
    "password",
    field("Initial password", h("input", { name: "password", type: "password", autocomplete: "new-password" }), "At least 12 characters. Give it to the person by a separate, secure route."),
    (v) => (String(v).length < 12 ? "must be at least 12 characters" : String(v).length > 256 ? "must be at most 256 characters" : null),
  );
  const uSubmit = h("button", { type: "submit" }, "Create account");
  const userForm = h(
    "form",
    { id: "user-form", class: "card", novalidate: true, "aria-labelledby": "user-form-h" },
    h("h3", { id: "user-form-h" }, "Add an account"),
    h("div", { class: "row" }, uEmail, uName, uRole),
    uOrganisation,
    specialtySet,
    uPassword,
    ubox,
    uSubmit,
  );
  userForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    ubox.show(null);
    specialtyError(null);
    let ok = uf.checkAll();
    const needsSpecialty = ["practitioner", "consultant"].includes(uRole.control.value);
    if (needsSpecialty && !chosenSpecialties().length) {
      specialtyError("Practitioners and consultants belong to at least one specialty.");
      if (ok) specialtyBoxes.querySelector("input")?.focus();
      ok = false;
    }
    if (!ok) return;
    try {
      const created = await busy(uSubmit, "Creating…", () =>
        api("/api/users", {
          method: "POST",
          body: {
            email: uEmail.control.value.trim(),
            name: uName.control.value.trim(),
            role: uRole.control.value,
            specialties: chosenSpecialties(),
            password: uPassword.control.value,
            organisation: uOrganisation.control.value.trim() || undefined,
          },
        }),
      );
      users = await api("/api/users");
      showUsers();
      refreshChairs();
      userForm.reset();
      uf.clear();
      say(`Account created for ${created.name} (${created.role}).`);
    } catch (err) {
      if (err.field === "specialties") specialtyError(err.message);
      else refuse(uf, ubox, err);
    }
  });

  // ---- Specialties --------------------------------------------------------------------
  const specialtyList = h("ul", { class: "specialty-list", id: "specialty-list" });
  const showSpecialties = () => fill(specialtyList, specialties.map((s) => h("li", {}, h("span", { class: "tag" }, s))));
  showSpecialties();

  const sf = checkedForm();
  const sbox = errorBox("specialty-error");
  const sSlug = sf.add(
    "slug",
    field("Short name (slug)", h("input", { name: "slug", type: "text", autocomplete: "off", spellcheck: "false" }), "Lower-case letters, digits and hyphens, e.g. foot-and-ankle"),
    (v) => {
      const s = String(v).trim();
      return s.length >= 2 && s.length <= 40 && /^[a-z][a-z0-9-]*$/.test(s) && !s.endsWith("-") && !s.includes("--")
        ? null
        : "must be a lower-case slug such as foot-and-ankle";
    },
  );
  const sName = textField(sf, "name", "Display name", { hint: "e.g. Foot and ankle" }, (v) => checkText(v, 80));
  const sSubmit = h("button", { type: "submit" }, "Add specialty");
  const specialtyForm = h(
    "form",
    { id: "specialty-form", class: "card", novalidate: true, "aria-labelledby": "specialty-form-h" },
    h("h3", { id: "specialty-form-h" }, "Add a specialty"),
    h("div", { class: "row" }, sSlug, sName),
    sbox,
    sSubmit,
  );
  specialtyForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    sbox.show(null);
    if (!sf.checkAll()) return;
    try {
      const added = await busy(sSubmit, "Adding…", () =>
        api("/api/specialties", { method: "POST", body: { slug: sSlug.control.value.trim(), name: sName.control.value.trim() } }),
      );
      specialties = await api("/api/specialties");
      showSpecialties();
      showSpecialtyBoxes();
      refreshSpecialtySelects();
      specialtyForm.reset();
      sf.clear();
      say(`Specialty added: ${added.name}.`);
    } catch (err) {
      refuse(sf, sbox, err);
    }
  });

  const qf = checkedForm();
  const qbox = errorBox("quorum-error");
  const qSpecialty = qf.add("specialty", field("Specialty", select({ name: "specialty" }, [])), (v) => (v ? null : "choose a specialty"));
  const qOthers = numberField(qf, "quorum_others", "Others needed besides the chair", 0, 10, 1, "Consultants or specialists present besides the chair.");
  const qSubmit = h("button", { type: "submit" }, "Set quorum");
  const quorumForm = h(
    "form",
    { id: "quorum-form", class: "card", novalidate: true, "aria-labelledby": "quorum-form-h" },
    h("h3", { id: "quorum-form-h" }, "Quorum"),
    h("div", { class: "row" }, qSpecialty, qOthers),
    qbox,
    qSubmit,
  );
  quorumForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    qbox.show(null);
    if (!qf.checkAll()) return;
    try {
      const r = await busy(qSubmit, "Saving…", () =>
        api(`/api/specialties/${encodeURIComponent(qSpecialty.control.value)}/quorum`, { method: "PUT", body: { quorum_others: Number(qOthers.control.value) } }),
      );
      say(`${title(r.slug)} meetings are quorate with the chair and ${r.quorum_others} other${r.quorum_others === 1 ? "" : "s"}.`);
    } catch (err) {
      refuse(qf, qbox, err);
    }
  });

  // ---- Series and sessions: the same plan fields ----------------------------------------
  const planForms = [];
  function plan(prefix, { withTitleHint }) {
    const f = checkedForm();
    const specialty = f.add("specialty", field("Specialty", select({ name: "specialty", id: `${prefix}-specialty` }, [])), (v) => (v ? null : "choose a specialty"));
    const chair = f.add("chair_id", field("Chair", select({ name: "chair_id", id: `${prefix}-chair` }, [])), (v) => (v ? null : "choose the chair (a consultant of the specialty)"));
    const titleF = field("Title (optional)", h("input", { name: "title", type: "text", id: `${prefix}-title` }), withTitleHint);
    f.add("title", titleF, (v) => (String(v).trim() ? checkText(v, 120) : null));
    const duration = numberField(f, "duration_minutes", "Length (minutes)", 15, 480, 90);
    const capacity = numberField(f, "case_capacity", "Cases", 1, 50, 8);
    const perCase = numberField(f, "minutes_per_case", "Minutes per case", 1, 120, 10);
    const cutoff = numberField(f, "booking_cutoff_hours", "Booking cut-off (hours before)", 0, 672, 48);
    const teaching = h("input", { type: "checkbox", name: "teaching", id: `${prefix}-teaching` });
    const p = {
      f,
      specialty,
      chair,
      fields: [h("div", { class: "row" }, specialty, chair, titleF), h("div", { class: "row" }, duration, capacity, perCase, cutoff), h("label", { class: "check", for: `${prefix}-teaching` }, teaching, "Teaching session (trainees may attend and see de-identified cases)")],
      body: () => ({
        specialty: specialty.control.value,
        chair_id: chair.control.value,
        title: titleF.control.value.trim() || undefined,
        duration_minutes: Number(duration.control.value),
        case_capacity: Number(capacity.control.value),
        minutes_per_case: Number(perCase.control.value),
        booking_cutoff_hours: Number(cutoff.control.value),
        teaching: teaching.checked,
      }),
    };
    specialty.control.addEventListener("change", () => refreshChair(p));
    planForms.push(p);
    return p;
  }
  function refreshChair(p) {
    const s = p.specialty.control.value;
    const was = p.chair.control.value;
    const consultants = users.filter((u) => u.active && u.role === "consultant" && (!s || u.specialties.includes(s)));
    fill(
      p.chair.control,
      h("option", { value: "" }, consultants.length ? "Choose…" : "No consultant of this specialty"),
      consultants.map((u) => h("option", { value: u.id, selected: u.id === was }, u.name)),
    );
  }
  function refreshChairs() {
    planForms.forEach(refreshChair);
  }
  const triageRules = triageRulesEditor(specialties, say);
  const targets = targetsEditor(specialties, say);
  function refreshSpecialtySelects() {
    triageRules.setSpecialties(specialties);
    targets.setSpecialties(specialties);
    for (const control of [qSpecialty.control, ...planForms.map((p) => p.specialty.control)]) {
      const was = control.value;
      fill(control, h("option", { value: "" }, "Choose…"), specialties.map((s) => h("option", { value: s, selected: s === was }, title(s))));
    }
    refreshChairs();
  }

  // Series.
  const series = plan("series", { withTitleHint: "Defaults to e.g. \"Rheumatology MDT\"" });
  const tomorrow = new Date();
  tomorrow.setDate(tomorrow.getDate() + 7);
  const firstDate = series.f.add("first_date", field("First date", h("input", { name: "first_date", type: "date", min: localDate(new Date()), value: localDate(tomorrow) })), (v) =>
    !v ? "choose the first date" : v < localDate(new Date()) ? "must not be in the past" : null,
  );
  const localTime = series.f.add("local_time", field("Start time (UK time)", h("input", { name: "local_time", type: "time", value: "12:30" })), (v) => (/^[0-9]{2}:[0-9]{2}$/.test(v) ? null : "choose a time"));
  const weeks = numberField(series.f, "weeks", "Weeks", 1, 104, 12);
  const seriesBox = errorBox("series-error");
  const seriesSubmit = h("button", { type: "submit" }, "Create series");
  const seriesForm = h(
    "form",
    { id: "series-form", class: "card", novalidate: true, "aria-labelledby": "series-form-h" },
    h("h3", { id: "series-form-h" }, "Weekly series"),
    h("p", { class: "hint" }, "Creates one session a week at the same clinic-local time, across clock changes."),
    h("div", { class: "row" }, firstDate, localTime, weeks),
    series.fields,
    seriesBox,
    seriesSubmit,
  );
  seriesForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    seriesBox.show(null);
    if (!series.f.checkAll()) return;
    try {
      const r = await busy(seriesSubmit, "Creating…", () =>
        api("/api/series", {
          method: "POST",
          body: { ...series.body(), first_date: firstDate.control.value, local_time: localTime.control.value, weeks: Number(weeks.control.value) },
        }),
      );
      const first = r.sessions[0];
      say(`Series created: ${r.sessions.length} session${r.sessions.length === 1 ? "" : "s"}${first ? `, the first ${first.title} on ` : ""}${first ? new Date(first.starts_at).toLocaleString() : ""}.`);
    } catch (err) {
      refuse(series.f, seriesBox, err);
    }
  });

  // A single session.
  const single = plan("session", { withTitleHint: "Defaults to e.g. \"Spinal MDT\"" });
  const startsAt = single.f.add("starts_at", field("Starts at (your local time)", h("input", { name: "starts_at", type: "datetime-local" })), (v) => {
    if (!v) return "choose the date and time";
    const t = new Date(v);
    if (Number.isNaN(t.getTime())) return "choose the date and time";
    return t.getTime() <= Date.now() ? "must be in the future" : null;
  });
  const sessionBox = errorBox("session-error");
  const sessionSubmit = h("button", { type: "submit" }, "Create session");
  const sessionForm = h(
    "form",
    { id: "session-form", class: "card", novalidate: true, "aria-labelledby": "session-form-h" },
    h("h3", { id: "session-form-h" }, "One-off session"),
    h("div", { class: "row" }, startsAt),
    single.fields,
    sessionBox,
    sessionSubmit,
  );
  sessionForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    sessionBox.show(null);
    if (!single.f.checkAll()) return;
    try {
      const s = await busy(sessionSubmit, "Creating…", () =>
        api("/api/sessions", { method: "POST", body: { ...single.body(), starts_at: new Date(startsAt.control.value).toISOString() } }),
      );
      say(`Session created: ${s.title} on ${new Date(s.starts_at).toLocaleString()}.`);
    } catch (err) {
      refuse(single.f, sessionBox, err);
    }
  });

  refreshSpecialtySelects();

  // ---- Patient record conflicts ---------------------------------------------------------
  // NHS numbers whose cases disagreed on name or date of birth when the patient register
  // was made. NHS numbers travel in request bodies only, never in an address.
  const conflictList = h("div", { id: "conflict-list", "aria-live": "polite" });
  const conflictBox = errorBox("conflicts-error");

  /**
   * A correction form: the patient's name and date of birth, set on the register and every
   * case of the patient, with the reason (audited). `nhs` fixes the NHS number (a
   * conflict's form); without it the form asks for one.
   */
  function correctionForm(prefix, nhs) {
    const f = checkedForm();
    const box = errorBox(`${prefix}-error`);
    const nhsF = nhs
      ? null
      : f.add(
          "nhs_number",
          field("NHS number", h("input", { name: "nhs_number", id: `${prefix}-nhs`, type: "text", inputmode: "numeric", autocomplete: "off", spellcheck: "false" }), "10 digits, e.g. 943 476 5919"),
          (v) => parseNhsNumber(v).error || null,
        );
    const given = textField(f, "given_name", "Given name", { attrs: { id: `${prefix}-given`, autocomplete: "off" } }, (v) => checkText(v, 100));
    const family = textField(f, "family_name", "Family name", { attrs: { id: `${prefix}-family`, autocomplete: "off" } }, (v) => checkText(v, 100));
    const dob = f.add("date_of_birth", field("Date of birth", h("input", { name: "date_of_birth", id: `${prefix}-dob`, type: "date" })), (v) => parseDateOfBirth(v).error || null);
    const reason = textField(
      f,
      "reason",
      "Reason for the correction",
      { multiline: true, hint: "Required. Kept in each case's audit trail, e.g. \"Checked against the GP record\".", attrs: { id: `${prefix}-reason` } },
      (v) => checkText(v, 500, true),
    );
    const submit = h("button", { type: "submit", id: `${prefix}-submit` }, "Correct the record");
    const form = h(
      "form",
      { id: prefix, class: "correction-form", novalidate: true, "aria-labelledby": `${prefix}-h` },
      h(nhs ? "h4" : "h3", { id: `${prefix}-h` }, nhs ? `Correct NHS ${formatNhsNumber(nhs)}` : "Correct a patient's details"),
      h("p", { class: "hint" }, "Sets the name and date of birth on the patient record and on every case of the patient."),
      nhsF,
      h("div", { class: "row" }, given, family, dob),
      reason,
      box,
      submit,
    );
    /** Fills the details from a variant and moves to the first of them. */
    form.use = (v) => {
      given.control.value = v.given_name;
      family.control.value = v.family_name;
      dob.control.value = v.date_of_birth;
      f.clear();
      box.show(null);
      given.control.focus();
    };
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      box.show(null);
      if (!f.checkAll()) return;
      const number = nhs || parseNhsNumber(nhsF.control.value).value;
      try {
        const r = await busy(submit, "Correcting…", () =>
          api("/api/patients/correction", {
            method: "POST",
            body: {
              nhs_number: number,
              given_name: given.control.value.trim(),
              family_name: family.control.value.trim(),
              date_of_birth: dob.control.value,
              reason: reason.control.value.trim(),
            },
          }),
        );
        const n = r.cases_updated;
        say(`Patient record corrected for NHS ${formatNhsNumber(number)}: ${n} case${n === 1 ? "" : "s"} updated.`);
        form.reset();
        f.clear();
        await showConflicts();
      } catch (err) {
        if (err.status === 404) box.show(`No patient with NHS number ${formatNhsNumber(number)} is on record, so there is nothing to correct.`);
        else refuse(f, box, err);
      }
    });
    return form;
  }

  function conflictCard(c, i) {
    const prefix = `correct-${i}`;
    const form = correctionForm(prefix, c.nhs_number);
    const nhs = formatNhsNumber(c.nhs_number);
    const headingId = `conflict-${i}-h`;
    return h(
      "article",
      { class: "card conflict", "aria-labelledby": headingId },
      h("h3", { id: headingId }, `NHS ${nhs}`),
      h("p", { class: "muted" }, "Found ", time(c.found_at), `: its cases carry ${c.variants.length} different sets of details. Choose “Use these details” on the right one, check it, and give the reason.`),
      h(
        "div",
        { class: "table-wrap", tabindex: "0", role: "region", "aria-label": `Details recorded for NHS ${nhs}` },
        h(
          "table",
          { class: "variants" },
          h("caption", { class: "sr-only" }, `Details recorded for NHS ${nhs}`),
          h("thead", {}, h("tr", {}, ["Name", "Date of birth", "Cases", ""].map((t, k) => h("th", { scope: "col" }, k === 3 ? h("span", { class: "sr-only" }, "Action") : t)))),
          h(
            "tbody",
            {},
            c.variants.map((v) => {
              const name = `${v.given_name} ${v.family_name}`;
              const n = v.case_ids.length;
              return h(
                "tr",
                {},
                h("td", { "data-label": "Name" }, name),
                h("td", { "data-label": "Date of birth" }, h("time", { datetime: v.date_of_birth }, dobText(v.date_of_birth))),
                h("td", { "data-label": "Cases" }, `${n} case${n === 1 ? "" : "s"}`),
                h(
                  "td",
                  {},
                  h("button", { type: "button", class: "secondary small", onclick: () => form.use(v), "aria-label": `Use ${name}, born ${dobText(v.date_of_birth)}, in the correction` }, "Use these details"),
                ),
              );
            }),
          ),
        ),
      ),
      form,
    );
  }

  async function showConflicts() {
    conflictBox.show(null);
    let conflicts;
    try {
      conflicts = await api("/api/patients/conflicts");
    } catch (err) {
      conflictBox.show(err);
      return;
    }
    fill(
      conflictList,
      conflicts.length
        ? conflicts.map(conflictCard)
        : h("p", { class: "muted", id: "no-conflicts" }, "No conflicting patient records."),
    );
  }
  await showConflicts();
  const anyCorrection = correctionForm("correction-form", null);
  anyCorrection.classList.add("card");

  if (!here()) return;
  fill(
    main,
    h("h1", {}, "Admin"),
    h(
      "nav",
      { class: "page-nav", "aria-label": "Admin sections" },
      h(
        "ul",
        {},
        [["admin-users", "Accounts"], ["admin-specialties", "Specialties"], ["admin-schedule", "Series and sessions"], ["admin-patients", "Patient record conflicts"]].map(([id, label]) =>
          // Not a fragment link: the hash is the router's. Scroll and move focus instead.
          h("li", {}, h("button", { type: "button", class: "link", onclick: () => jump(id) }, label)),
        ),
      ),
    ),
    status,
    h(
      "section",
      { id: "admin-users", "aria-labelledby": "users-h" },
      h("h2", { id: "users-h" }, "Accounts"),
      h(
        "div",
        { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Accounts table" },
        h(
        "table",
        { class: "users" },
        h("caption", { class: "sr-only" }, "Accounts"),
        h("thead", {}, h("tr", {}, ["Name", "Email", "Role", "Specialties", "Status", "Created", "Account"].map((t) => h("th", { scope: "col" }, t)))),
        usersBody,
        ),
      ),
      accountBox,
      oneTime,
      userForm,
    ),
    h(
      "section",
      { id: "admin-specialties", "aria-labelledby": "specialties-h" },
      h("h2", { id: "specialties-h" }, "Specialties"),
      specialtyList,
      h("div", { class: "two" }, specialtyForm, quorumForm),
      triageRules,
      targets,
    ),
    h("section", { id: "admin-schedule", "aria-labelledby": "schedule-h" }, h("h2", { id: "schedule-h" }, "Series and sessions"), seriesForm, sessionForm),
    h(
      "section",
      { id: "admin-patients", "aria-labelledby": "patients-h" },
      h("h2", { id: "patients-h" }, "Patient record conflicts"),
      h(
        "p",
        { class: "hint" },
        "NHS numbers whose cases were booked under different names or dates of birth before each NHS number became one patient record. " +
          "Check the right details (e.g. with the GP practice), then correct the record: every case of the patient takes them.",
      ),
      conflictBox,
      conflictList,
      anyCorrection,
    ),
  );
}

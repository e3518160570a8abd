// Booking a case into a session: the patient, the question for the MDT and the referral
// proforma (proforma.js), checked in the browser as the server checks them, sent once (an Idempotency-Key makes a double
// submit safe), then each attachment uploaded with its own progress bar.
import { api, upload } from "../api.js";
import { clock, errorBox, explain, field, fill, h, humanise, time } from "../ui.js";
import { busy, checkedForm, select, stillHere, textField } from "../forms.js";
import { checkText, formatNhsNumber, parseDateOfBirth, parseNhsNumber, parseOdsCode, todayUtc } from "../nhs.js";
import { caseDetails } from "../proforma.js";
import { openForBooking } from "./schedule.js";

// Common MSK red flags: any of them means the urgent pathway today, not an MDT slot.
const RED_FLAGS = [
  ["cauda_equina", "Suspected cauda equina syndrome (saddle anaesthesia, bladder or bowel change)"],
  ["cancer", "Suspected cancer or metastatic disease (history of cancer, weight loss, night pain)"],
  ["infection", "Suspected infection (fever, immunosuppression, IV drug use, discitis, septic joint)"],
  ["fracture", "Suspected fracture (trauma, osteoporosis, long-term steroids)"],
  ["neuro_deficit", "Progressive or severe neurological deficit"],
  ["gca", "Suspected giant cell arteritis or other vasculitis"],
];

const ATTACHMENT_TYPES = ["image/png", "image/jpeg", "application/pdf", "application/dicom", "text/plain"];
const MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024;

export const sizeLabel = (n) => (n < 1024 ? `${n} bytes` : n < 1024 * 1024 ? `${Math.max(1, Math.round(n / 1024))} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`);

/** A date of birth (YYYY-MM-DD) as words, e.g. "30 Nov 1962": a calendar date, in no zone. */
const birthDate = (iso) =>
  new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" }).format(new Date(`${iso}T00:00:00Z`));

/**
 * The patient's fields of a booking (and of a caseload case) into `form` (a
 * forms.checkedForm), checked as the server checks them: {nhs, given, family, dob, sex,
 * gp} and patient() (the request's `patient`).
 */
export function patientFields(form) {
  const nhs = form.add(
    "nhs_number",
    field("NHS number", h("input", { name: "nhs_number", type: "text", inputmode: "numeric", autocomplete: "off", maxlength: 14, spellcheck: "false" }), "10 digits, for example 999 234 5675"),
    (v) => (String(v).trim() ? parseNhsNumber(v).error || null : "enter the NHS number"),
  );
  nhs.control.addEventListener("blur", () => {
    const ok = parseNhsNumber(nhs.control.value);
    if (ok.value) nhs.control.value = formatNhsNumber(ok.value);
  });
  const given = textField(form, "given_name", "Given name", { attrs: { autocomplete: "off" } }, (v) => checkText(v, 100));
  const family = textField(form, "family_name", "Family name", { attrs: { autocomplete: "off" } }, (v) => checkText(v, 100));
  const dob = form.add(
    "date_of_birth",
    field("Date of birth", h("input", { name: "date_of_birth", type: "date", min: "1900-01-01", max: todayUtc() })),
    (v) => (String(v).trim() ? parseDateOfBirth(v).error || null : "enter the date of birth"),
  );
  const sex = form.add(
    "sex",
    field("Sex", select({ name: "sex" }, [["", "Choose…"], ["female", "Female"], ["male", "Male"], ["other", "Other"], ["unknown", "Not known"]])),
    (v) => (v ? null : "choose the patient's sex"),
  );
  const gp = form.add(
    "gp_practice_code",
    field("GP practice code", h("input", { name: "gp_practice_code", type: "text", autocomplete: "off", maxlength: 6, spellcheck: "false", class: "short" }), "The registered practice's ODS code, for example A81001"),
    (v) => (String(v).trim() ? parseOdsCode(v).error || null : "enter the GP practice's ODS code"),
  );
  gp.control.addEventListener("blur", () => {
    const ok = parseOdsCode(gp.control.value);
    if (ok.value) gp.control.value = ok.value;
  });
  const patient = () => ({
    nhs_number: parseNhsNumber(nhs.control.value).value,
    given_name: given.control.value.trim(),
    family_name: family.control.value.trim(),
    date_of_birth: dob.control.value,
    sex: sex.control.value,
    gp_practice_code: parseOdsCode(gp.control.value).value,
  });
  return { nhs, given, family, dob, sex, gp, patient };
}

export async function render(main, { user, params, navigate }) {
  const [sessionId] = params;
  const here = stillHere();
  const { session: s } = await api(`/api/sessions/${sessionId}`);
  // The specialty's triage rules: which proforma fields it requires.
  const rules = await api(`/api/specialties/${encodeURIComponent(s.specialty)}/triage`);
  const ends = new Date(Date.parse(s.starts_at) + s.duration_minutes * 60000).toISOString();
  const summary = h(
    "section",
    { class: "card session-summary", "aria-labelledby": "session-title" },
    h("h2", { id: "session-title" }, s.title),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "When"),
      h("dd", {}, time(s.starts_at), "–", time(ends, clock)),
      h("dt", {}, "Places"),
      h("dd", { id: "places" }, `${Math.max(0, s.capacity - s.booked)} of ${s.capacity} free`),
      h("dt", {}, "Booking closes"),
      h("dd", {}, time(s.booking_closes_at)),
      h("dt", {}, "Status"),
      h("dd", {}, h("span", { class: `tag state-${s.state}` }, humanise(s.state)), s.teaching ? [" ", h("span", { class: "tag teaching" }, "teaching")] : null),
    ),
  );

  if (!here()) return;
  if (!openForBooking(s)) {
    let why = "This session is not taking bookings.";
    if (s.state === "cancelled") why = "This session has been cancelled.";
    else if (s.booked >= s.capacity) why = explain({ code: "session_full" });
    else if (Date.now() >= Date.parse(s.booking_closes_at)) why = explain({ code: "booking_closed" });
    fill(main, h("h1", {}, "Book a case"), summary, h("p", { class: "warning", role: "alert" }, why), h("p", {}, h("a", { href: "#/schedule" }, "Back to the schedule")));
    return;
  }

  const form = checkedForm();

  // Patient.
  const { nhs, given, family, dob, sex, gp, patient } = patientFields(form);

  // The question, clinical details and the referral proforma (the fields the specialty
  // requires come from its triage rules).
  const details = caseDetails(form, { rules });

  // Red flags.
  const flagBoxes = RED_FLAGS.map(([value, label]) => {
    const id = `red-flag-${value}`;
    return h("label", { class: "check", for: id }, h("input", { type: "checkbox", id, name: "red_flags", value }), label);
  });
  const flagWarning = h(
    "div",
    { class: "warning red-flag-warning", id: "red-flag-warning", role: "alert", hidden: true },
    h("strong", {}, "Do not book this patient into an MDT. "),
    explain({ code: "red_flags_present" }),
    " Cases with red flags cannot wait for a meeting; untick the box only if the red flag has been excluded.",
  );
  const flagsSet = h(
    "fieldset",
    { class: "red-flags", "aria-describedby": "red-flag-warning" },
    h("legend", {}, "Red flags"),
    h("p", { class: "hint" }, "Tick any that apply. Red flags need the urgent pathway today, not an MDT."),
    flagBoxes,
    flagWarning,
  );
  const tickedFlags = () => flagBoxes.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
  flagsSet.addEventListener("change", () => {
    flagWarning.hidden = tickedFlags().length === 0;
  });

  // Attachments.
  const files = field(
    "Attachments (optional)",
    h("input", { type: "file", name: "files", multiple: true, accept: "image/png,image/jpeg,application/pdf,.dcm,application/dicom,text/plain" }),
    "Images (PNG, JPEG, DICOM), clinic letters (PDF) or text, up to 25 MB each.",
  );
  const fileList = h("ul", { class: "file-list", id: "file-list" });
  const checkFiles = () => {
    for (const f of files.control.files) {
      if (!f.size) return `${f.name} is empty`;
      if (f.size > MAX_ATTACHMENT_BYTES) return `${f.name} is larger than 25 MB`;
      if (!ATTACHMENT_TYPES.includes(f.type) && !/\.dcm$/i.test(f.name)) return `${f.name} is not a PNG, JPEG, DICOM, PDF or text file`;
    }
    return null;
  };
  form.add("file", files, checkFiles);
  files.control.addEventListener("change", () => {
    fill(fileList, [...files.control.files].map((f) => h("li", {}, `${f.name} (${sizeLabel(f.size)})`)));
    form.checkOne("file");
  });

  const submit = h("button", { type: "submit", id: "book-submit" }, "Book case");
  // A known NHS number with another name or date of birth: what is on record (when the
  // server lets us see it) and the ways to put it right.
  const conflict = h("div", { id: "patient-conflict", class: "warning", role: "alert", tabindex: "-1", hidden: true });
  const alert = errorBox("book-error");
  const el = h(
    "form",
    { id: "book-form", class: "card", novalidate: true, "aria-labelledby": "book-heading" },
    h("h2", { id: "book-heading" }, "Patient and question"),
    h("fieldset", { id: "patient-details" }, h("legend", {}, "Patient"), h("div", { class: "row" }, nhs, given, family), h("div", { class: "row" }, dob, sex, gp), conflict),
    details.clinical,
    details.proforma,
    flagsSet,
    h("fieldset", {}, h("legend", {}, "Attachments"), files, fileList),
    alert,
    h("div", { class: "actions" }, submit, h("a", { href: "#/schedule", class: "button secondary" }, "Cancel")),
  );
  fill(main, h("h1", {}, "Book a case"), summary, el);

  // The "see the highlighted fields" summary goes once every field is right again.
  let summaryShown = false;
  const maybeClearSummary = () => {
    if (summaryShown && !el.querySelector(".field.invalid") && !tickedFlags().length) {
      alert.show(null);
      summaryShown = false;
    }
  };
  el.addEventListener("input", maybeClearSummary);
  el.addEventListener("change", maybeClearSummary);

  // One key per booking attempt: a retried or double-clicked submit books once.
  let idempotencyKey = crypto.randomUUID();

  // The body of the last booking the server refused for conflicting patient details.
  let refused = null;

  /** Sends a booking; on success shows the confirmation, else puts the refusal in view. */
  async function send(body, button) {
    const chosen = [...files.control.files];
    let booked;
    try {
      booked = await busy(button, button === submit ? "Booking…" : null, () =>
        api(`/api/sessions/${s.id}/cases`, { method: "POST", body, headers: { "Idempotency-Key": idempotencyKey } }),
      );
    } catch (err) {
      if (err.code === "patient_details_conflict") {
        // Nothing was booked: the next attempt (corrected or confirmed) is a new one.
        idempotencyKey = crypto.randomUUID();
        showConflict(err, body);
      } else if (err.code === "red_flags_present") {
        flagWarning.hidden = false;
        alert.show(err);
      } else if (!details.showServerError(err)) {
        alert.show(err);
      } else {
        alert.show("The server refused the booking: see the highlighted field.");
      }
      return;
    }
    idempotencyKey = crypto.randomUUID();
    if (!here()) return;
    await confirmation(main, s, booked, chosen, navigate);
  }

  function hideConflict() {
    refused = null;
    conflict.hidden = true;
    fill(conflict);
  }

  function showConflict(err, body) {
    refused = body;
    const recorded = err.body?.recorded;
    const sent = body.patient;
    const nameDiffers = recorded && (recorded.given_name !== sent.given_name || recorded.family_name !== sent.family_name);
    const dobDiffers = recorded && recorded.date_of_birth !== sent.date_of_birth;
    const coordinator = user?.role === "coordinator";
    const confirmUpdate = (label, id) => {
      const button = h("button", { type: "button", id, class: "secondary" }, label);
      button.addEventListener("click", () => send({ ...refused, confirm_patient_update: true }, button));
      return button;
    };
    const useRecorded = h("button", { type: "button", id: "use-recorded" }, "Use the recorded details");
    useRecorded.addEventListener("click", () => {
      given.control.value = recorded.given_name;
      family.control.value = recorded.family_name;
      dob.control.value = recorded.date_of_birth;
      for (const name of ["given_name", "family_name", "date_of_birth"]) form.checkOne(name);
      fill(conflict, h("p", { role: "status" }, "The recorded name and date of birth are filled in. Check them against the patient's own, then book the case."));
      refused = null;
      submit.focus();
    });
    fill(
      conflict,
      h("p", {}, h("strong", {}, "The patient's details differ from the record for this NHS number. "),
        err.message || "Check the NHS number, name and date of birth against the patient's own."),
      recorded
        ? [
          h("dl", { class: "facts", id: "recorded-details" },
            h("dt", {}, "Name on record"), h("dd", { id: "recorded-name" }, `${recorded.given_name} ${recorded.family_name}`),
            h("dt", {}, "Date of birth on record"), h("dd", { id: "recorded-dob" }, h("time", { datetime: recorded.date_of_birth }, birthDate(recorded.date_of_birth)))),
          h("p", {}, nameDiffers && !dobDiffers
            ? "Only the name differs. If the patient has changed their name, confirm the change: the record is updated (and the change audited)."
            : dobDiffers && coordinator
              ? "The date of birth differs. Correct the record only if you have checked it against the patient's own."
              : dobDiffers
                ? "The date of birth differs: a typing error, or a different patient? Only a coordinator can correct a recorded date of birth."
                : ""),
          h("div", { class: "actions" },
            useRecorded,
            nameDiffers && !dobDiffers ? confirmUpdate("Confirm name change", "confirm-name-change") : null,
            dobDiffers && coordinator ? confirmUpdate("Confirm correction", "confirm-correction") : null),
        ]
        : h("p", {}, "Check the NHS number first: if it is right, ask a coordinator to look at the patient's record."),
    );
    conflict.hidden = false;
    conflict.focus();
  }

  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.show(null);
    if (submit.disabled) return;
    hideConflict();
    summaryShown = false;
    if (tickedFlags().length) {
      flagWarning.hidden = false;
      alert.show({ code: "red_flags_present" });
      summaryShown = true;
      flagBoxes.find((l) => l.querySelector("input").checked).querySelector("input").focus();
      return;
    }
    if (!form.checkAll()) {
      alert.show("Some answers need correcting: see the highlighted fields.");
      summaryShown = true;
      return;
    }
    const body = {
      patient: patient(),
      ...details.body(),
      red_flags: [],
    };
    await send(body, submit);
  });
}

/** The confirmation: the booking, then each attachment's upload with its progress. */
async function confirmation(main, s, booked, chosen, navigate) {
  const heading = h("h2", { id: "booked-heading", tabindex: "-1" }, "Case booked: awaiting triage");
  const uploads = h("ul", { class: "uploads", id: "uploads" });
  const uploadStatus = h("p", { id: "upload-status", role: "status" });
  const p = booked.patient || {};
  const panel = h(
    "section",
    { class: "success booked", id: "booked", "aria-labelledby": "booked-heading" },
    heading,
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Patient"),
      h("dd", {}, `${p.given_name} ${p.family_name}`, " · ", h("span", { class: "nhs" }, `NHS ${formatNhsNumber(p.nhs_number)}`)),
      h("dt", {}, "Session"),
      h("dd", {}, s.title),
      h("dt", {}, "When"),
      h("dd", {}, time(s.starts_at)),
      h("dt", {}, "Urgency"),
      h("dd", {}, booked.urgency === "urgent" ? "Urgent" : "Routine"),
      h("dt", {}, "State"),
      h("dd", {}, h("span", { class: `tag state-${booked.state}` }, humanise(booked.state))),
    ),
    h("p", { id: "triage-note" }, "It is not on the agenda yet: the session's chair or a coordinator triages it first. They accept it onto the agenda, list it with a standard plan, or return it to you with a reason to edit and resubmit (you will see it in My cases)."),
    h("p", {}, "A confirmation has been emailed to you."),
    chosen.length ? [h("h3", {}, "Attachments"), uploads, uploadStatus] : null,
    h(
      "p",
      { class: "actions" },
      h("a", { class: "button", href: `#/cases/${booked.id}`, id: "view-case" }, "View the case"),
      h("a", { class: "button secondary", href: "#/cases" }, "My cases"),
      h("button", { type: "button", class: "secondary", id: "book-another", onclick: () => navigate(`/book/${s.id}`) }, "Book another case"),
    ),
  );
  fill(main, h("h1", {}, "Book a case"), panel);
  heading.focus();
  if (!chosen.length) return;

  let failed = 0;
  const rows = chosen.map((file, i) => {
    const id = `upload-${i}`;
    const bar = h("progress", { id, max: 1, value: 0 });
    const state = h("span", { class: "upload-state" }, "Waiting");
    uploads.append(h("li", {}, h("label", { for: id }, file.name, " ", h("span", { class: "muted" }, `(${sizeLabel(file.size)})`)), bar, state));
    return { file, bar, state };
  });
  uploadStatus.textContent = `Uploading ${chosen.length} attachment${chosen.length === 1 ? "" : "s"}…`;
  for (const { file, bar, state } of rows) {
    state.textContent = "Uploading…";
    try {
      await upload(`/api/cases/${booked.id}/attachments`, file, (fraction) => {
        bar.value = fraction;
      });
      bar.value = 1;
      state.textContent = "Uploaded";
      state.className = "upload-state done";
    } catch (err) {
      failed += 1;
      state.textContent = `Not uploaded: ${explain(err)}`;
      state.className = "upload-state error";
    }
  }
  uploadStatus.textContent = failed
    ? `${failed} of ${chosen.length} attachments could not be uploaded. The case is booked; add them from the case page later.`
    : `All ${chosen.length} attachment${chosen.length === 1 ? "" : "s"} uploaded.`;
  uploadStatus.className = failed ? "error" : "done";
  if (failed) uploadStatus.setAttribute("role", "alert");
}

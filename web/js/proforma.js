// The case details a referrer writes (issue 15): the question and clinical details, and
// the referral proforma (date received, source, symptom weeks, conservative care tried,
// imaging done, medication tried, STarT Back for back and neck cases, the patient's
// agreement). One copy, used by the booking page and by editing a returned booking; the
// fields a specialty requires come from GET /api/specialties/{slug}/triage and are marked.
// Also the read-only summary of a proforma (the triage queue and the case page).
import { field, fill, h } from "./ui.js";
import { select, textField } from "./forms.js";
import { BODY_REGIONS, BODY_SIDES, checkText, todayUtc } from "./nhs.js";
import { dayText, isDay } from "./days.js";

export const REFERRAL_SOURCES = [
  ["gp", "GP"],
  ["first_contact_practitioner", "First contact practitioner"],
  ["physiotherapist", "Physiotherapist"],
  ["extended_scope_practitioner", "Extended-scope practitioner"],
  ["consultant", "Consultant"],
  ["other", "Other"],
];
export const CARE_KINDS = [
  ["physiotherapy", "Physiotherapy"],
  ["exercise_programme", "Exercise programme"],
  ["manual_therapy", "Manual therapy"],
  ["analgesia", "Analgesia"],
  ["injection", "Injection"],
  ["acupuncture", "Acupuncture"],
  ["psychological_therapy", "Psychological therapy"],
  ["pain_management_programme", "Pain management programme"],
  ["orthotics", "Orthotics"],
  ["weight_management", "Weight management"],
  ["other", "Other"],
];
export const IMAGING_KINDS = [
  ["xray", "X-ray"],
  ["mri", "MRI"],
  ["ct", "CT"],
  ["ultrasound", "Ultrasound"],
  ["bone_scan", "Bone scan"],
  ["other", "Other"],
];
export const RETURN_REASONS = [
  ["incomplete_proforma", "Proforma incomplete"],
  ["conservative_care_not_tried", "Conservative care not yet tried"],
  ["imaging_needed", "Imaging needed first"],
  ["wrong_service", "Wrong service"],
  ["urgent_pathway", "Needs the urgent pathway"],
  ["other", "Other"],
];
/** Words for a proforma field's wire name (the server names a missing one). */
export const FIELD_NAMES = {
  referral_source: "where the referral came from",
  symptom_weeks: "symptom duration",
  conservative_care: "conservative care tried",
  imaging: "imaging done",
  medication_tried: "medication tried",
  start_back: "STarT Back score",
};

const label = (pairs, value) => pairs.find(([v]) => v === value)?.[1] || String(value ?? "").replaceAll("_", " ");
export const returnReason = (code) => label(RETURN_REASONS, code);

/** Back and neck regions (as the server's BodySite::is_spinal): STarT Back screens these. */
const SPINAL = ["neck", "upper back", "lower back", "back", "cervical spine", "thoracic spine", "lumbar spine", "sacroiliac joint"];
export const isSpinal = (site) => {
  const s = String(site || "").trim().toLowerCase();
  return SPINAL.some((r) => s === r || s.endsWith(` ${r}`));
};

/** Splits a body site ("left knee") into its side and region. */
function splitSite(site) {
  const s = String(site || "");
  const side = BODY_SIDES.find((x) => s.startsWith(`${x} `));
  return side ? [side, s.slice(side.length + 1)] : ["", s];
}

const capital = (x) => x[0].toUpperCase() + x.slice(1);

/** A whole number in [min, max] typed into a field, or an error message. */
function wholeNumber(raw, min, max, what) {
  const s = String(raw ?? "").trim();
  if (!/^[0-9]+$/.test(s) || Number(s) < min || Number(s) > max) return { error: `${what} must be a whole number from ${min} to ${max}` };
  return { value: Number(s) };
}

/** A date typed or picked (YYYY-MM-DD), not after today (UTC, as the server checks). */
function pastDate(raw) {
  const s = String(raw ?? "").trim();
  if (!isDay(s)) return "must be a date as YYYY-MM-DD";
  if (s > todayUtc()) return "must not be in the future";
  return null;
}

/** A label with "(required)" or "(optional)" after it. */
const marked = (text, required) => [text, " ", h("span", { class: required ? "req" : "muted" }, required ? "(required)" : "(optional)")];

/** A checkbox with its label beside it and an error line, shaped like ui.field(). */
function checkboxField(id, text, control) {
  control.id = id;
  const err = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  control.setAttribute("aria-describedby", err.id);
  const wrap = h("div", { class: "field" }, h("label", { class: "check", for: id }, control, text), err);
  wrap.control = control;
  wrap.setError = (message) => {
    err.textContent = message || "";
    err.hidden = !message;
    control.setAttribute("aria-invalid", message ? "true" : "false");
    wrap.classList.toggle("invalid", Boolean(message));
  };
  return wrap;
}

/**
 * Builds the case details into `form` (a forms.checkedForm). `rules` is the specialty's
 * triage data ({proforma_required}); `initial` a case view to prefill from (editing).
 * Returns {clinical, proforma} (two fieldsets to place), body() (the request's details),
 * and showServerError(err) (puts a refusal next to its field; false when none matched).
 */
export function caseDetails(form, { rules, initial = null }) {
  const requiredFields = new Set(rules?.proforma_required || []);
  const needs = (name) => requiredFields.has(name);
  const c = initial || {};

  // The question and clinical details.
  const question = textField(form, "clinical_question", "Question for the MDT", { multiline: true, hint: "What do you want the team to decide?" }, (v) => checkText(v, 4000, true));
  const history = textField(form, "history", "History summary", { multiline: true, hint: "Presentation, examination, investigations so far and current management." }, (v) => checkText(v, 4000, true));
  const urgency = form.add(
    "urgency",
    field("Urgency", select({ name: "urgency" }, [["routine", "Routine"], ["urgent", "Urgent"]], c.urgency || "routine")),
    (v) => (v === "routine" || v === "urgent" ? null : "choose routine or urgent"),
  );
  const [initialSide, initialRegion] = splitSite(c.body_site);
  const side = field("Side", select({ name: "side" }, [["", "Not applicable"], ...BODY_SIDES.map((x) => [x, capital(x)])], initialSide));
  const region = form.add(
    "body_site",
    field("Body region", select({ name: "region" }, [["", "Choose…"], ...BODY_REGIONS.map((x) => [x, capital(x)])], initialRegion)),
    (v) => (String(v).trim() ? null : "enter the body region"),
  );
  const privateText = h("input", { type: "checkbox", name: "free_text_anonymous", id: "free-text-anonymous", checked: initial ? !c.free_text_identifies_patient : false });
  if (initial) {
    question.control.value = c.clinical_question || "";
    history.control.value = c.history || "";
  }
  const clinical = h(
    "fieldset",
    {},
    h("legend", {}, "Clinical details"),
    question,
    history,
    h("div", { class: "row" }, urgency, side, region),
    h("label", { class: "check", for: "free-text-anonymous" }, privateText, "The question and history contain nothing that identifies the patient (they may then be shown to trainees)"),
  );

  // The referral.
  const received = form.add(
    "referral_received_on",
    field("Date the referral was received", h("input", { name: "referral_received_on", type: "date", max: todayUtc(), value: c.referral_received_on || todayUtc() }), "The patient's waiting time counts from this date."),
    (v) => (String(v).trim() ? pastDate(v) : "enter the date the referral was received"),
  );
  const source = form.add(
    "referral_source",
    field(marked("Referred by", needs("referral_source")), select({ name: "referral_source" }, [["", "Choose…"], ...REFERRAL_SOURCES], c.referral_source || "")),
    (v) => (!v && needs("referral_source") ? "choose where the referral came from" : null),
  );
  const weeks = form.add(
    "symptom_weeks",
    field(marked("Symptom duration in weeks", needs("symptom_weeks")), h("input", { name: "symptom_weeks", type: "number", inputmode: "numeric", min: 0, max: 1040, step: 1, class: "short", value: c.symptom_weeks ?? "" })),
    (v) => {
      if (!String(v).trim()) return needs("symptom_weeks") ? "enter how many weeks the symptoms have lasted" : null;
      return wholeNumber(v, 0, 1040, "the number of weeks").error || null;
    },
  );

  // Repeatable rows: conservative care tried, imaging done. Each row's fields are checked
  // fields under keys of their own; a refusal naming `conservative_care[1].weeks` finds
  // the second row.
  let rowSeq = 0;
  function repeatable({ name, legend, hint, addLabel, noun, emptyText, build }) {
    const rows = [];
    const list = h("div", { class: "repeat-rows" });
    const empty = h("p", { class: "muted" }, emptyText);
    const add = h("button", { type: "button", class: "secondary small", id: `${name}-add` }, addLabel);
    const err = h("p", { class: "field-error", id: `${name}-error`, hidden: true });
    // The group as a checked field: its control is the add button, its error the group's.
    const group = h("fieldset", { class: "repeat", id: `${name}-group`, "aria-describedby": err.id },
      h("legend", {}, marked(legend, needs(name))), hint ? h("p", { class: "hint" }, hint) : null, list, empty, add, err);
    group.control = add;
    group.setError = (message) => {
      err.textContent = message || "";
      err.hidden = !message;
      group.classList.toggle("invalid", Boolean(message));
    };
    form.add(name, group, () => (needs(name) && !rows.length ? `add at least one (${noun}) or ask why the specialty needs it` : null));
    const relabel = () => {
      rows.forEach((row, i) => row.relabel(i + 1));
      empty.hidden = rows.length > 0;
    };
    const addRow = (values = {}) => {
      const key = `${name}-${++rowSeq}`;
      const row = build(key, values);
      const remove = h("button", { type: "button", class: "secondary small remove-row" }, "Remove");
      remove.addEventListener("click", () => {
        const at = rows.indexOf(row);
        rows.splice(at, 1);
        row.keys.forEach((k) => form.remove(k));
        row.el.remove();
        relabel();
        (rows[at]?.first || rows[at - 1]?.first || add).focus();
      });
      row.remove = remove;
      row.el.append(remove);
      const baseRelabel = row.relabel;
      row.relabel = (n) => {
        baseRelabel(n);
        remove.setAttribute("aria-label", `Remove ${noun} ${n}`);
      };
      rows.push(row);
      list.append(row.el);
      relabel();
      group.setError(null);
      return row;
    };
    add.addEventListener("click", () => addRow().first.focus());
    relabel();
    return { group, rows, addRow };
  }

  const care = repeatable({
    name: "conservative_care",
    legend: "Conservative care tried",
    hint: "Each treatment and for how many weeks.",
    addLabel: "Add a treatment",
    noun: "treatment",
    emptyText: "None added.",
    build(key, v) {
      const kind = field("", select({ name: "care_kind" }, [["", "Choose…"], ...CARE_KINDS], v.kind || ""));
      const wks = field("", h("input", { name: "care_weeks", type: "number", inputmode: "numeric", min: 0, max: 1040, step: 1, value: v.weeks ?? "" }));
      form.add(`${key}-kind`, kind, (x) => (x ? null : "choose the treatment"));
      form.add(`${key}-weeks`, wks, (x) => wholeNumber(x, 0, 1040, "the number of weeks").error || null);
      const el = h("div", { class: "row repeat-row" }, kind, wks);
      return {
        el, first: kind.control, keys: [`${key}-kind`, `${key}-weeks`],
        fields: { kind: `${key}-kind`, weeks: `${key}-weeks` },
        relabel(n) {
          kind.querySelector("label").textContent = `Treatment ${n}`;
          wks.querySelector("label").textContent = `Weeks of treatment ${n}`;
        },
        value: () => ({ kind: kind.control.value, weeks: Number(wks.control.value) }),
      };
    },
  });
  const imaging = repeatable({
    name: "imaging",
    legend: "Imaging already done",
    hint: "The kind, the date and a short summary of the report.",
    addLabel: "Add imaging",
    noun: "imaging",
    emptyText: "None added.",
    build(key, v) {
      const kind = field("", select({ name: "imaging_kind" }, [["", "Choose…"], ...IMAGING_KINDS], v.kind || ""));
      const done = field("", h("input", { name: "imaging_done_on", type: "date", max: todayUtc(), value: v.done_on || "" }));
      const summary = field("", h("input", { name: "imaging_summary", type: "text", maxlength: 500, value: v.summary || "" }));
      form.add(`${key}-kind`, kind, (x) => (x ? null : "choose the kind of imaging"));
      form.add(`${key}-done_on`, done, (x) => (String(x).trim() ? pastDate(x) : "enter the date it was done"));
      form.add(`${key}-summary`, summary, (x) => (String(x).trim() ? checkText(x, 500, true) : null));
      const el = h("div", { class: "row repeat-row imaging-row" }, kind, done, summary);
      return {
        el, first: kind.control, keys: [`${key}-kind`, `${key}-done_on`, `${key}-summary`],
        fields: { kind: `${key}-kind`, done_on: `${key}-done_on`, summary: `${key}-summary` },
        relabel(n) {
          kind.querySelector("label").textContent = `Imaging ${n}`;
          done.querySelector("label").textContent = `Date of imaging ${n}`;
          summary.querySelector("label").textContent = `Report summary of imaging ${n}`;
        },
        value: () => ({ kind: kind.control.value, done_on: done.control.value, summary: summary.control.value.trim() }),
      };
    },
  });
  for (const x of c.conservative_care || []) care.addRow(x);
  for (const x of c.imaging || []) imaging.addRow(x);

  const medication = textField(form, "medication_tried", marked("Medication tried for pain", needs("medication_tried")), { multiline: true, attrs: { rows: 2 } }, (v) => {
    if (!String(v).trim()) return needs("medication_tried") ? "enter the medication tried" : null;
    return checkText(v, 500, true);
  });
  medication.control.value = c.medication_tried || "";

  // STarT Back: back and neck cases only.
  const spinal = () => isSpinal(region.control.value);
  const sbTotal = form.add(
    "start_back",
    field(marked("STarT Back total score (0–9)", needs("start_back")), h("input", { name: "start_back_total", type: "number", inputmode: "numeric", min: 0, max: 9, step: 1, class: "short", value: c.start_back?.total ?? "" })),
    (v) => {
      if (!spinal()) return null;
      if (!String(v).trim()) {
        if (String(sbPsych.control.value).trim()) return "enter the total score as well";
        return needs("start_back") ? "enter the STarT Back score: this specialty needs it for back and neck cases" : null;
      }
      return wholeNumber(v, 0, 9, "the total").error || null;
    },
  );
  const sbPsych = form.add(
    "start_back.psychosocial",
    field("Psychosocial subscore (0–5)", h("input", { name: "start_back_psychosocial", type: "number", inputmode: "numeric", min: 0, max: 5, step: 1, class: "short", value: c.start_back?.psychosocial ?? "" })),
    (v) => {
      if (!spinal()) return null;
      const total = String(sbTotal.control.value).trim();
      if (!String(v).trim()) return total ? "enter the psychosocial subscore as well" : null;
      const p = wholeNumber(v, 0, 5, "the subscore");
      if (p.error) return p.error;
      if (total && /^[0-9]+$/.test(total) && p.value > Number(total)) return "the subscore cannot be more than the total";
      return null;
    },
  );
  const startBack = h("fieldset", { id: "start-back", class: "start-back" },
    h("legend", {}, "STarT Back screening"),
    h("p", { class: "hint" }, "For back and neck pain: the total of the nine items and the psychosocial subscore (items 5–9)."),
    h("div", { class: "row" }, sbTotal, sbPsych));
  const showStartBack = () => {
    startBack.hidden = !spinal();
    if (startBack.hidden) {
      sbTotal.setError(null);
      sbPsych.setError(null);
    }
  };
  region.control.addEventListener("change", showStartBack);
  showStartBack();

  const agrees = form.add(
    "patient_agrees",
    checkboxField("patient-agrees", "The patient agrees to their case being discussed at the MDT (required)", h("input", { type: "checkbox", name: "patient_agrees", checked: Boolean(c.patient_agrees) })),
    (_v, control) => (control.checked ? null : "the patient must agree to their case being discussed before it is booked"),
  );

  const requiredNames = [...requiredFields].filter((f) => FIELD_NAMES[f]).map((f) => (f === "start_back" ? `${FIELD_NAMES[f]} (back and neck cases)` : FIELD_NAMES[f]));
  const proforma = h(
    "fieldset",
    { id: "proforma" },
    h("legend", {}, "Referral"),
    h("p", { class: "hint", id: "proforma-required" }, requiredNames.length
      ? `This specialty requires: ${requiredNames.join(", ")}.`
      : "This specialty requires none of the optional details below."),
    h("div", { class: "row" }, received, source, weeks),
    care.group,
    imaging.group,
    medication,
    startBack,
    agrees,
  );

  /** Puts a refusal next to its field: row fields by index, the rest by name. */
  function showServerError(err) {
    if (err?.code === "proforma_field_required" && FIELD_NAMES[err.field]) {
      const why = err.field === "start_back" ? " for back and neck cases" : "";
      return form.showServerError({ field: err.field, message: `this specialty requires ${FIELD_NAMES[err.field]}${why}` });
    }
    const m = /^(conservative_care|imaging)\[([0-9]+)\]\.(\w+)$/.exec(err?.field || "");
    if (m) {
      const row = (m[1] === "imaging" ? imaging : care).rows[Number(m[2])];
      const key = row?.fields[m[3]];
      if (key) return form.showServerError({ ...err, field: key });
    }
    return form.showServerError(err);
  }

  function body() {
    const optionalNumber = (v) => (String(v).trim() ? Number(v) : null);
    const totals = spinal() && String(sbTotal.control.value).trim()
      ? { total: Number(sbTotal.control.value), psychosocial: Number(sbPsych.control.value) }
      : null;
    return {
      clinical_question: question.control.value.trim(),
      history: history.control.value.trim(),
      urgency: urgency.control.value,
      body_site: [side.control.value, region.control.value].filter(Boolean).join(" "),
      free_text_identifies_patient: !privateText.checked,
      referral_received_on: received.control.value,
      referral_source: source.control.value || null,
      symptom_weeks: optionalNumber(weeks.control.value),
      conservative_care: care.rows.map((r) => r.value()),
      imaging: imaging.rows.map((r) => r.value()),
      medication_tried: medication.control.value.trim() || null,
      start_back: totals,
      patient_agrees: agrees.control.checked,
    };
  }

  return { clinical, proforma, body, showServerError };
}

/**
 * The proforma of an identified case view as dt/dd pairs for a dl.facts (nothing for a
 * de-identified view: trainees are never sent it).
 */
export function proformaFacts(c) {
  if (!c || !c.patient) return [];
  const out = [];
  const fact = (term, ...value) => out.push(h("dt", {}, term), h("dd", {}, ...value));
  if (c.referral_received_on) fact("Referral received", h("time", { datetime: c.referral_received_on }, dayText(c.referral_received_on)));
  fact("Referred by", c.referral_source ? label(REFERRAL_SOURCES, c.referral_source) : h("span", { class: "muted" }, "Not given"));
  fact("Symptoms", c.symptom_weeks != null ? `${c.symptom_weeks} week${c.symptom_weeks === 1 ? "" : "s"}` : h("span", { class: "muted" }, "Not given"));
  fact("Conservative care", c.conservative_care?.length
    ? h("ul", { class: "plain" }, c.conservative_care.map((x) => h("li", {}, `${label(CARE_KINDS, x.kind)}, ${x.weeks} week${x.weeks === 1 ? "" : "s"}`)))
    : h("span", { class: "muted" }, "None recorded"));
  fact("Imaging", c.imaging?.length
    ? h("ul", { class: "plain" }, c.imaging.map((x) => h("li", {}, `${label(IMAGING_KINDS, x.kind)}, `, h("time", { datetime: x.done_on }, dayText(x.done_on)), x.summary ? `: ${x.summary}` : "")))
    : h("span", { class: "muted" }, "None recorded"));
  fact("Medication tried", c.medication_tried ? h("span", { class: "prose" }, c.medication_tried) : h("span", { class: "muted" }, "Not given"));
  if (c.start_back) {
    fact("STarT Back", `${c.start_back.total} of 9, psychosocial ${c.start_back.psychosocial} of 5`, c.start_back_risk ? [" · ", h("span", { class: `tag risk-${c.start_back_risk}` }, `${c.start_back_risk} risk`)] : null);
  } else if (isSpinal(c.body_site)) {
    fact("STarT Back", h("span", { class: "muted" }, "Not given"));
  }
  fact("Patient agrees", c.patient_agrees ? "Yes" : "Not recorded");
  return out;
}

/** How long a booking has waited, in words: "waiting 45 min", "waiting 3 h", "waiting 2 days". */
export function waitingText(minutes) {
  const m = Math.max(0, Math.floor(Number(minutes) || 0));
  if (m < 60) return `waiting ${m} min`;
  if (m < 48 * 60) return `waiting ${Math.floor(m / 60)} h`;
  return `waiting ${Math.floor(m / 1440)} days`;
}

/** A returned case's reason and note, as a warning panel (the referrer's to-do). */
export function returnedPanel(c, ...extra) {
  const panel = h("section", { class: "warning returned", id: "returned", "aria-labelledby": "returned-h" });
  fill(panel,
    h("h2", { id: "returned-h" }, "Returned: not ready for the MDT"),
    h("p", {}, h("strong", {}, "Reason: "), h("span", { id: "return-reason" }, returnReason(c.return_reason))),
    c.return_note ? h("p", {}, h("strong", {}, "Note from triage: "), h("span", { id: "return-note", class: "prose" }, c.return_note)) : null,
    extra);
  return panel;
}

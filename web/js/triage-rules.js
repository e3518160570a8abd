// The coordinator's editor of a specialty's triage data (on the admin page): which
// referral proforma fields a booking must give, and the standard plans a case listed, not
// discussed, is signed with. Reads and writes GET/PUT /api/specialties/{slug}/triage; a
// refusal naming a field (`standard_plans[1].code`) is shown next to that field.
import { api } from "./api.js";
import { errorBox, field, fill, h, humanise } from "./ui.js";
import { busy, select } from "./forms.js";
import { FIELD_NAMES } from "./proforma.js";

/** The proforma fields a specialty may require, in the booking form's order. */
export const PROFORMA_FIELDS = ["referral_source", "symptom_weeks", "conservative_care", "imaging", "medication_tried", "start_back"];

const title = (slug) => humanise(slug).replace(/^./, (c) => c.toUpperCase());
const sentence = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);
const FIELD_HINTS = { start_back: "asked for back and neck cases only" };

/**
 * Builds the editor. `specialties` is the list of slugs; `say(text)` reports a success.
 * Returns the form element; `editor.setSpecialties(list)` refreshes the choice.
 */
export function triageRulesEditor(specialties, say) {
  const box = errorBox("triage-rules-error");
  const specialty = select({ id: "triage-specialty", name: "specialty" }, [["", "Choose…"], ...specialties.map((s) => [s, title(s)])]);
  const specialtyField = field("Specialty", specialty, "Choose a specialty to see and change its triage data.");

  // Which proforma fields a booking must give.
  const checks = PROFORMA_FIELDS.map((name) => {
    const input = h("input", { type: "checkbox", id: `requires-${name}`, name: "proforma_required", value: name });
    return { name, input, label: h("label", { class: "check", for: input.id }, input, sentence(FIELD_NAMES[name]), FIELD_HINTS[name] ? h("span", { class: "muted" }, ` (${FIELD_HINTS[name]})`) : null) };
  });
  const requiredError = h("p", { class: "field-error", id: "proforma-required-error", hidden: true });
  const requiredSet = h("fieldset", { id: "proforma-required-fields", "aria-describedby": "proforma-required-hint proforma-required-error" },
    h("legend", {}, "Required in every booking"),
    h("p", { class: "hint", id: "proforma-required-hint" }, "The patient's agreement is always required. A booking without a field ticked here is refused, and the booking page marks it required."),
    h("div", { class: "checks" }, checks.map((c) => c.label)),
    requiredError);

  // The standard plans, as rows.
  let rows = [];
  const planList = h("div", { id: "standard-plans" });
  const noPlans = h("p", { class: "muted", id: "no-standard-plans" }, "No standard plans: cases cannot be listed, not discussed, in this specialty.");
  const addPlan = h("button", { type: "button", class: "secondary", id: "standard-plan-add" }, "Add a standard plan");
  const plansError = h("p", { class: "field-error", id: "standard-plans-error", hidden: true });

  function planRow(p = { code: "", title: "", plan: "" }) {
    const code = field("Code", h("input", { type: "text", name: "code", value: p.code, autocomplete: "off", spellcheck: "false" }), "Lower-case letters, digits and _, unique, e.g. physio_pathway");
    const name = field("Title", h("input", { type: "text", name: "title", value: p.title, maxlength: 120 }));
    const plan = field("Plan (the signed outcome's text)", h("textarea", { name: "plan", rows: 3 }, p.plan));
    const remove = h("button", { type: "button", class: "secondary small" }, "Remove");
    const heading = h("h4", {});
    const el = h("div", { class: "repeat-row standard-plan" }, heading, h("div", { class: "row" }, code, name), plan, remove);
    const row = { el, code, title: name, plan, remove, heading };
    remove.addEventListener("click", () => {
      const at = rows.indexOf(row);
      rows = rows.filter((r) => r !== row);
      showRows();
      (rows[Math.min(at, rows.length - 1)]?.code.control || addPlan).focus();
    });
    return row;
  }

  /** Numbers the rows in their labels ("Code of plan 2"), so each control is named. */
  function showRows() {
    rows.forEach((r, i) => {
      const n = i + 1;
      r.heading.textContent = `Standard plan ${n}`;
      r.code.querySelector("label").textContent = `Code of plan ${n}`;
      r.title.querySelector("label").textContent = `Title of plan ${n}`;
      r.plan.querySelector("label").textContent = `Plan ${n} (the signed outcome's text)`;
      r.remove.setAttribute("aria-label", `Remove standard plan ${n}`);
    });
    fill(planList, rows.map((r) => r.el));
    noPlans.hidden = rows.length > 0;
  }

  addPlan.addEventListener("click", () => {
    const row = planRow();
    rows.push(row);
    showRows();
    row.code.control.focus();
  });

  const submit = h("button", { type: "submit", id: "triage-rules-submit" }, "Save triage data");
  const body = h("div", { id: "triage-rules-body", hidden: true },
    requiredSet,
    h("fieldset", { id: "standard-plans-set" },
      h("legend", {}, "Standard plans"),
      h("p", { class: "hint" }, "What a case listed, not discussed, is signed with when the chair confirms it at the meeting."),
      noPlans, planList, addPlan, plansError),
    box, submit);
  const form = h("form", { id: "triage-rules-form", class: "card", novalidate: true, "aria-labelledby": "triage-rules-h" },
    h("h3", { id: "triage-rules-h" }, "Triage data"),
    specialtyField, body);

  function clearErrors() {
    box.show(null);
    requiredError.hidden = true;
    plansError.hidden = true;
    for (const r of rows) for (const f of [r.code, r.title, r.plan]) f.setError(null);
  }

  let loading = 0;
  specialty.addEventListener("change", async () => {
    clearErrors();
    const slug = specialty.value;
    body.hidden = true;
    if (!slug) return;
    const mine = ++loading;
    try {
      const rules = await api(`/api/specialties/${encodeURIComponent(slug)}/triage`);
      if (mine !== loading) return;
      const required = new Set(rules.proforma_required || []);
      for (const c of checks) c.input.checked = required.has(c.name);
      rows = (rules.standard_plans || []).map(planRow);
      showRows();
      body.hidden = false;
    } catch (err) {
      box.show(err);
      body.hidden = false;
    }
  });

  /** A refusal next to the field it names: `standard_plans[1].code`, `proforma_required[0]`. */
  function showServerError(err) {
    // The message may start with the field path ("standard_plans[1].code: must be…").
    const words = String(err?.message || "").replace(/^[\w.\[\]]+:\s*/, "");
    const m = /^standard_plans\[(\d+)\]\.(code|title|plan)$/.exec(err?.field || "");
    if (m && rows[Number(m[1])]) {
      const f = rows[Number(m[1])][m[2]];
      f.setError(`Standard plan ${Number(m[1]) + 1}: ${sentence(words)}.`);
      f.control.focus();
      return true;
    }
    if (/^proforma_required/.test(err?.field || "")) {
      requiredError.textContent = sentence(words);
      requiredError.hidden = false;
      checks[0].input.focus();
      return true;
    }
    if (err?.field === "standard_plans") {
      plansError.textContent = sentence(words);
      plansError.hidden = false;
      addPlan.focus();
      return true;
    }
    return false;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors();
    const slug = specialty.value;
    if (!slug) {
      box.show("Choose a specialty first.");
      specialty.focus();
      return;
    }
    const payload = {
      proforma_required: checks.filter((c) => c.input.checked).map((c) => c.name),
      standard_plans: rows.map((r) => ({ code: r.code.control.value.trim(), title: r.title.control.value.trim(), plan: r.plan.control.value.trim() })),
    };
    try {
      const saved = await busy(submit, "Saving…", () =>
        api(`/api/specialties/${encodeURIComponent(slug)}/triage`, { method: "PUT", body: payload }));
      const n = saved.standard_plans.length;
      const required = saved.proforma_required.map((f) => FIELD_NAMES[f] || f);
      say(`Triage data saved for ${title(slug)}: ${required.length ? `requires ${required.join(", ")}` : "no optional field required"}; ${n} standard plan${n === 1 ? "" : "s"}.`);
    } catch (err) {
      if (!showServerError(err)) box.show(err);
    }
  });

  form.setSpecialties = (list) => {
    const was = specialty.value;
    fill(specialty, h("option", { value: "" }, "Choose…"), list.map((s) => h("option", { value: s, selected: s === was }, title(s))));
  };
  return form;
}

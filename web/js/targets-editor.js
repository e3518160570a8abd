// The coordinator's editor of a specialty's waiting-time targets (on the admin page,
// beside its triage data): each target a wait (referral to triage decision, or to
// discussion), the cases it covers (all, urgent or routine), within how many calendar
// or working days, and the share of cases that should be. Reads and writes
// GET/PUT /api/specialties/{slug}/targets (the national defaults until a coordinator
// saves); a refusal naming a target (`targets[1]`) is shown at that target. The reports
// page judges each specialty's waits by these.
import { api } from "./api.js";
import { errorBox, field, fill, h, humanise } from "./ui.js";
import { busy, select } from "./forms.js";
import { targetText } from "./waits.js";

/** The server's limit (`too_many_targets` beyond it). */
const MAX_TARGETS = 20;
const MEASURES = [
  ["referral_to_discussion", "Referral to discussion"],
  ["referral_to_triage", "Referral to triage decision"],
];
const URGENCIES = [
  ["any", "All cases"],
  ["urgent", "Urgent cases"],
  ["routine", "Routine cases"],
];
const DAY_KINDS = [
  ["calendar", "Calendar days"],
  ["working", "Working days"],
];
const title = (slug) => humanise(slug).replace(/^./, (c) => c.toUpperCase());
const sentence = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

/**
 * Builds the editor. `specialties` is the list of slugs; `say(text)` reports a success.
 * Returns the form element; `editor.setSpecialties(list)` refreshes the choice.
 */
export function targetsEditor(specialties, say) {
  const box = errorBox("targets-error");
  const specialty = select({ id: "targets-specialty", name: "specialty" }, [["", "Choose…"], ...specialties.map((s) => [s, title(s)])]);
  const specialtyField = field("Specialty", specialty, "Choose a specialty to see and change its waiting-time targets.");

  let rows = [];
  const list = h("div", { id: "target-rows" });
  const none = h("p", { class: "muted", id: "no-targets" }, "No targets: the reports show the waits without judging them.");
  const add = h("button", { type: "button", class: "secondary", id: "target-add" }, "Add a target");

  /** The row's target as the server takes it (numbers as typed; the server checks them). */
  const valueOf = (r) => ({
    measure: r.measure.control.value,
    urgency: r.urgency.control.value,
    within_days: r.days.control.value.trim() === "" ? null : Number(r.days.control.value),
    day_kind: r.kind.control.value,
    target_percent: r.share.control.value.trim() === "" ? null : Number(r.share.control.value),
  });

  function targetRow(t = { measure: "referral_to_discussion", urgency: "any", within_days: 42, day_kind: "calendar", target_percent: 90 }) {
    const measure = field("Wait", select({ name: "measure" }, MEASURES, t.measure));
    const urgency = field("Cases", select({ name: "urgency" }, URGENCIES, t.urgency));
    const days = field("Within (days)", h("input", { type: "number", name: "within_days", min: 0, max: 365, step: 1, inputmode: "numeric", value: String(t.within_days) }));
    const kind = field("Counting", select({ name: "day_kind" }, DAY_KINDS, t.day_kind));
    const share = field("Share of cases (%)", h("input", { type: "number", name: "target_percent", min: 0.1, max: 100, step: "any", inputmode: "decimal", value: String(t.target_percent) }));
    const words = h("p", { class: "hint target-words" });
    const error = h("p", { class: "field-error target-error", id: `target-error-${Math.random().toString(36).slice(2)}`, hidden: true });
    const remove = h("button", { type: "button", class: "secondary small" }, "Remove");
    const heading = h("h4", {});
    const el = h("div", { class: "repeat-row target-row" }, heading, h("div", { class: "row" }, measure, urgency, days, kind, share), words, error, remove);
    const row = { el, measure, urgency, days, kind, share, words, error, remove, heading };
    // A refusal of the whole target is read with each of its controls.
    for (const f of [measure, urgency, days, kind, share]) f.control.setAttribute("aria-describedby", `${f.control.getAttribute("aria-describedby")} ${error.id}`.trim());
    const describe = () => {
      const v = valueOf(row);
      words.textContent = Number.isInteger(v.within_days) && v.target_percent > 0 ? `${targetText(v)}: ${v.target_percent}% of the cases.` : "";
    };
    for (const f of [measure, urgency, days, kind, share]) f.control.addEventListener("input", describe);
    describe();
    remove.addEventListener("click", () => {
      const at = rows.indexOf(row);
      rows = rows.filter((r) => r !== row);
      showRows();
      (rows[Math.min(at, rows.length - 1)]?.measure.control || add).focus();
    });
    return row;
  }

  /** Numbers the rows in their labels ("Wait of target 2"), so each control is named. */
  function showRows() {
    rows.forEach((r, i) => {
      const n = i + 1;
      r.heading.textContent = `Target ${n}`;
      for (const [f, text] of [[r.measure, "Wait"], [r.urgency, "Cases"], [r.days, "Within (days)"], [r.kind, "Counting"], [r.share, "Share of cases (%)"]]) {
        f.querySelector("label").textContent = `${text}, target ${n}`;
      }
      r.remove.setAttribute("aria-label", `Remove target ${n}`);
    });
    fill(list, rows.map((r) => r.el));
    none.hidden = rows.length > 0;
    add.disabled = rows.length >= MAX_TARGETS;
  }

  add.addEventListener("click", () => {
    const row = targetRow();
    rows.push(row);
    showRows();
    row.measure.control.focus();
  });

  const submit = h("button", { type: "submit", id: "targets-submit" }, "Save targets");
  const body = h("div", { id: "targets-body", hidden: true }, none, list, add, box, submit);
  const form = h(
    "form",
    { id: "targets-form", class: "card", novalidate: true, "aria-labelledby": "targets-h" },
    h("h3", { id: "targets-h" }, "Waiting-time targets"),
    h("p", { class: "hint" }, `The reports judge each specialty's waits from the referral by these: for example, 90% of all cases discussed within 42 calendar days. At most ${MAX_TARGETS}; no two alike.`),
    specialtyField,
    body,
  );

  function clearErrors() {
    box.show(null);
    for (const r of rows) {
      r.error.hidden = true;
      r.el.classList.remove("invalid");
    }
  }

  let loading = 0;
  specialty.addEventListener("change", async () => {
    clearErrors();
    const slug = specialty.value;
    body.hidden = true;
    if (!slug) return;
    const mine = ++loading;
    try {
      const saved = await api(`/api/specialties/${encodeURIComponent(slug)}/targets`);
      if (mine !== loading) return;
      rows = saved.targets.map(targetRow);
      showRows();
      body.hidden = false;
    } catch (err) {
      box.show(err);
    }
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors();
    const slug = specialty.value;
    if (!slug) {
      box.show("Choose a specialty first.");
      specialty.focus();
      return;
    }
    try {
      const saved = await busy(submit, "Saving…", () =>
        api(`/api/specialties/${encodeURIComponent(slug)}/targets`, { method: "PUT", body: { targets: rows.map(valueOf) } }),
      );
      const n = saved.targets.length;
      say(`Waiting-time targets saved for ${title(slug)}: ${n} target${n === 1 ? "" : "s"}.`);
    } catch (err) {
      // A refusal naming a target (`targets[1]`) is shown at it.
      const m = /^targets\[(\d+)\]$/.exec(err?.field || "");
      const row = m && rows[Number(m[1])];
      if (row) {
        row.error.textContent = `Target ${Number(m[1]) + 1}: ${sentence(err.code === "duplicate_target" ? "it is the same as another target" : err.message || "check this target")}.`;
        row.error.hidden = false;
        row.el.classList.add("invalid");
        row.measure.control.focus();
      } else {
        box.show(err.code === "too_many_targets" ? `A specialty has at most ${MAX_TARGETS} targets.` : err);
      }
    }
  });

  form.setSpecialties = (all) => {
    const was = specialty.value;
    fill(specialty, h("option", { value: "" }, "Choose…"), all.map((s) => h("option", { value: s, selected: s === was }, title(s))));
  };
  return form;
}

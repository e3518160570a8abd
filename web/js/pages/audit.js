// Audit tools for coordinators (DESIGN §2, §7): who touched a patient's records (by NHS
// number, sent in a POST body, never in the address), or what one person did, a page at
// a time; and a check that the audit log's hash chain is unbroken.
import { api } from "../api.js";
import { errorBox, explain, field, fill, h, humanise, time } from "../ui.js";
import { busy, checkedForm, select, stillHere } from "../forms.js";
import { formatNhsNumber, parseNhsNumber } from "../nhs.js";

const PAGE = 50;
const cell = (label, ...children) => h("td", { "data-label": label }, h("div", {}, ...children));

const CODES = {
  invalid_nhs_number: "This is not a valid NHS number: check the 10 digits.",
  invalid_time: "Check the dates and times of the period.",
  subject_required: "Give an NHS number or choose a person.",
};

export async function render(main) {
  const here = stillHere();
  const users = await api("/api/users");
  const names = new Map(users.map((u) => [u.id, u]));

  // ---- Search -----------------------------------------------------------------------
  const f = checkedForm();
  const box = errorBox("audit-error");
  const byPatient = h("input", { type: "radio", name: "subject", id: "subject-patient", value: "patient", checked: true });
  const byUser = h("input", { type: "radio", name: "subject", id: "subject-user", value: "user" });
  const nhs = f.add(
    "nhs_number",
    field("NHS number", h("input", { type: "text", name: "nhs_number", id: "audit-nhs", inputmode: "numeric", autocomplete: "off", spellcheck: "false", class: "short" }), "10 digits, spaces allowed."),
    (v) => (nhs.hidden ? null : parseNhsNumber(v).error || null),
  );
  const sorted = [...users].sort((a, b) => a.name.localeCompare(b.name));
  const person = f.add(
    "user_id",
    field("Person", select({ name: "user_id", id: "audit-user" }, [["", "Choose…"], ...sorted.map((u) => [u.id, `${u.name} (${u.role}${u.active ? "" : ", inactive"})`])])),
    (v) => (person.hidden || v ? null : "choose a person"),
  );
  person.hidden = true;
  const pick = () => {
    nhs.hidden = !byPatient.checked;
    person.hidden = byPatient.checked;
    nhs.setError(null);
    person.setError(null);
  };
  byPatient.addEventListener("change", pick);
  byUser.addEventListener("change", pick);
  const toInstant = (v) => (v ? new Date(v).toISOString() : undefined);
  const validLocal = (v) => !v || !Number.isNaN(new Date(v).getTime());
  const from = f.add("from", field("From (optional)", h("input", { type: "datetime-local", name: "from", id: "audit-from" }), "Your local time."), (v) => (validLocal(v) ? null : "choose a date and time"));
  const to = f.add("to", field("Before (optional)", h("input", { type: "datetime-local", name: "to", id: "audit-to" }), "Events before this time."), (v) =>
    !validLocal(v) ? "choose a date and time" : v && from.control.value && new Date(v) <= new Date(from.control.value) ? "must be after the start" : null,
  );
  const submit = h("button", { type: "submit", id: "audit-submit" }, "Search");
  const form = h(
    "form",
    { id: "audit-form", class: "card", novalidate: true, "aria-labelledby": "audit-form-h" },
    h("h2", { id: "audit-form-h" }, "Search the audit trail"),
    h(
      "fieldset",
      {},
      h("legend", {}, "Search by"),
      h("div", { class: "checks" }, h("label", { class: "check", for: "subject-patient" }, byPatient, "Patient (NHS number)"), h("label", { class: "check", for: "subject-user" }, byUser, "Person (what they did)")),
    ),
    h("div", { class: "row" }, nhs, person),
    h("div", { class: "row" }, from, to),
    box,
    submit,
  );

  // ---- Results ----------------------------------------------------------------------
  const results = h("section", { id: "audit-results", "aria-labelledby": "results-h", hidden: true });
  const heading = h("h2", { id: "results-h", tabindex: "-1" }, "Events");
  const summary = h("p", { id: "audit-summary" });
  const rows = h("tbody");
  const more = h("button", { type: "button", class: "secondary", id: "audit-more", hidden: true }, "More");
  const moreBox = errorBox("audit-more-error");
  fill(
    results,
    heading,
    summary,
    h(
      "div",
      { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Audit events table" },
      h(
        "table",
        { class: "audit" },
        h("caption", { class: "sr-only" }, "Audit events, in the order they were recorded"),
        h("thead", {}, h("tr", {}, ["#", "Time", "Actor", "Action", "Record", "Client address", "Details"].map((t) => h("th", { scope: "col" }, t)))),
        rows,
      ),
    ),
    moreBox,
    more,
  );

  // The search on screen: its query, the cursor for "More" and the rows shown. Set only
  // when a search succeeds, so "More" always continues the search whose rows are shown.
  let query = null;
  let next = null;
  let shown = 0;
  let searches = 0; // the number of the latest search; a "More" of an older one is dropped
  let searching = false;

  const actor = (id) => {
    if (!id) return h("span", { class: "muted" }, "system");
    const u = names.get(id);
    return u ? [u.name, " ", h("span", { class: `tag role-${u.role}` }, u.role)] : h("code", {}, id);
  };
  const record = (e) => {
    if (!e.record_id) return humanise(e.record_type);
    const link = e.record_type === "case" ? h("a", { href: `#/cases/${e.record_id}`, "aria-label": `Open case ${e.record_id.slice(0, 8)}` }, "open") : null;
    const who = e.record_type === "user" && names.get(e.record_id);
    return [humanise(e.record_type), " ", who ? who.name : h("code", { class: "id", title: e.record_id }, e.record_id.slice(0, 8)), link ? [" · ", link] : null];
  };
  const details = (d) => {
    if (d === null || d === undefined || (typeof d === "object" && !Object.keys(d).length)) return h("span", { class: "muted" }, "—");
    const text = JSON.stringify(d, null, 1);
    return text.length <= 60 ? h("code", { class: "details" }, JSON.stringify(d)) : h("details", {}, h("summary", {}, "Show"), h("pre", { class: "details" }, text));
  };
  const addRows = (events) => {
    for (const e of events) {
      rows.append(
        h(
          "tr",
          { class: "audit-row", dataset: { seq: String(e.seq) } },
          h("td", { class: "seq" }, String(e.seq)),
          cell("Time", time(e.occurred_at)),
          cell("Actor", actor(e.actor_id)),
          cell("Action", humanise(e.action)),
          cell("Record", record(e)),
          cell("Client address", e.client_addr || h("span", { class: "muted" }, "—")),
          cell("Details", details(e.details)),
        ),
      );
    }
    shown += events.length;
  };

  async function page(q, after) {
    const body = { ...q, limit: PAGE };
    if (after !== null && after !== undefined) body.after = after;
    return api("/api/audit/search", { method: "POST", body });
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    box.show(null);
    if (!f.checkAll()) return;
    const q = byPatient.checked ? { nhs_number: parseNhsNumber(nhs.control.value).value } : { user_id: person.control.value };
    q.from = toInstant(from.control.value);
    q.to = toInstant(to.control.value);
    const seq = ++searches;
    searching = true;
    // "More" belongs to the search on screen: none while this one runs (and a "More"
    // still loading for the old one will be dropped).
    more.disabled = true;
    more.removeAttribute("aria-busy");
    more.textContent = "More";
    try {
      const r = await busy(submit, "Searching…", () => page(q, null));
      if (seq !== searches) return;
      query = q;
      fill(rows);
      shown = 0;
      addRows(r.events);
      next = r.next;
      more.hidden = next === null || next === undefined;
      moreBox.show(null);
      const subject = q.nhs_number
        ? `NHS number ${formatNhsNumber(q.nhs_number)}${r.cases ? ` (${r.cases.length} case${r.cases.length === 1 ? "" : "s"})` : ""}`
        : names.get(q.user_id)?.name || "the person";
      heading.textContent = `Events for ${subject}`;
      summary.textContent = r.events.length
        ? `${shown} event${shown === 1 ? "" : "s"} shown${more.hidden ? "." : "; more are available."}`
        : "No events match.";
      results.hidden = false;
      heading.focus();
    } catch (err) {
      if (seq !== searches) return;
      if (err.field === "nhs_number" || err.code === "invalid_nhs_number") {
        nhs.setError(CODES.invalid_nhs_number);
        nhs.control.focus();
      } else if (err.field === "from" || err.field === "to") {
        (err.field === "from" ? from : to).setError(CODES[err.code] || explain(err));
      } else {
        box.show(CODES[err.code] || explain(err));
      }
    } finally {
      if (seq === searches) {
        searching = false;
        more.disabled = false;
      }
    }
  });

  more.addEventListener("click", async () => {
    if (searching || more.disabled || !query) return;
    moreBox.show(null);
    const seq = searches;
    const q = query;
    const after = next;
    more.disabled = true;
    more.setAttribute("aria-busy", "true");
    more.textContent = "Loading…";
    try {
      const before = shown;
      const r = await page(q, after);
      if (seq !== searches) return; // a new search has started: this page is of the old one
      addRows(r.events);
      next = r.next;
      more.hidden = next === null || next === undefined;
      summary.textContent = `${shown} event${shown === 1 ? "" : "s"} shown${more.hidden ? "." : "; more are available."}`;
      // Keep the keyboard where the new rows start.
      const first = rows.children[before]?.querySelector("td div");
      if (more.hidden && first) {
        first.setAttribute("tabindex", "-1");
        first.focus();
      }
    } catch (err) {
      if (seq === searches) moreBox.show(err);
    } finally {
      // After a new search started, the button is that search's to set.
      if (seq === searches) {
        more.removeAttribute("aria-busy");
        more.textContent = "More";
        more.disabled = false;
      }
    }
  });

  // ---- Chain verification -----------------------------------------------------------
  const verifyButton = h("button", { type: "button", id: "verify-chain", class: "secondary" }, "Verify audit chain");
  const verdict = h("div", { id: "verify-result", role: "status" });
  const verifyBox = errorBox("verify-error");
  verifyButton.addEventListener("click", async () => {
    verifyBox.show(null);
    fill(verdict);
    try {
      const r = await busy(verifyButton, "Verifying…", () => api("/api/admin/audit/verify"));
      fill(
        verdict,
        r.ok
          ? h("p", { class: "success", dataset: { ok: "true" } }, h("strong", {}, "Intact. "), `All ${r.length} events chain correctly: none has been changed or removed.`)
          : h(
              "p",
              { class: "warning", dataset: { ok: "false" } },
              h("strong", {}, "Broken. "),
              `The chain of ${r.length} events breaks at event #${r.broken_at}: that event or one before it has been changed or removed. Report this to your information governance lead.`,
            ),
      );
    } catch (err) {
      verifyBox.show(err);
    }
  });

  if (!here()) return;
  fill(
    main,
    h("h1", {}, "Audit"),
    form,
    results,
    h(
      "section",
      { id: "verify-section", class: "card", "aria-labelledby": "verify-h" },
      h("h2", { id: "verify-h" }, "Audit chain"),
      h("p", {}, "Every audit event carries a hash of the one before it. Verifying walks the whole chain and reports the first event that does not match."),
      verifyButton,
      verdict,
      verifyBox,
    ),
  );
}

// Mentorship (DESIGN §3, §4 flow 7). Consultants log the mentorship they give and see
// their delivered time against their contracts and their arms' backlog of flagged cases;
// coordinators see every contract and log, set up contracts and assign cover for leave
// (issue 21: the summary shows covered minutes, missed weeks and who covered);
// practitioners and trainees see the logs they were mentored in.
//
// A consultant picks mentees by name from the people directory (`GET /api/people`:
// practitioners and trainees sharing a specialty with them) and the cases discussed from
// their arms' mentorship backlog (`GET /api/mentorship/backlog`, one audited read).
import { api } from "../api.js";
import { errorBox, explain, field, fill, h, humanise } from "../ui.js";
import { busy, checkedForm, select, stillHere } from "../forms.js";
import { dayText, dayTime, isDay, minutesText, quarterOf, ukToday, windowForm, yearTo } from "../days.js";
import { patientName } from "./cases.js";

const KINDS = [
  ["case_review", "Case review"],
  ["joint_assessment", "Joint assessment"],
  ["teaching", "Teaching"],
];
const KIND = Object.fromEntries(KINDS);
const title = (slug) => humanise(slug).replace(/^./, (c) => c.toUpperCase());

const CODES = {
  contract_overlaps: "This consultant already has a contract for that arm on some of those days. Choose other dates.",
  consultant_not_in_specialty: "The consultant does not work in that specialty.",
  not_a_consultant: "Contracts are for consultants.",
  unknown_consultant: "Choose an active consultant.",
  unknown_mentee: "One of the mentees is not an active account.",
  invalid_mentee: "Mentees are practitioners or trainees.",
  unknown_case: "One of the cases is not one you can see in full.",
  specialty_required: "Choose the arm this time counts towards.",
  invalid_specialty: "You are not a consultant in that specialty.",
  date_in_future: "Log mentorship once it has happened: the date is in the future.",
  invalid_duration: "The duration must be from 1 to 600 minutes.",
  invalid_date_range: "The end date must be on or after the start date.",
};
const why = (err) => CODES[err?.code] || explain(err);
const COVER_CODES = {
  invalid_cover: "The contract's own consultant does not cover it: choose another consultant.",
  cover_outside_contract: "The cover must fall on days the contract runs.",
  cover_overlaps: "The contract already has a cover on some of those days.",
  consultant_not_in_specialty: "The covering consultant does not work in the contract's arm.",
};

/** A whole number in [min, max], or an error message. */
const whole = (min, max) => (v) => {
  const s = String(v).trim();
  if (!s) return "enter a number";
  if (!/^[0-9]+$/.test(s)) return "must be a whole number";
  const n = Number(s);
  return n < min || n > max ? `must be from ${min} to ${max}` : null;
};

const cell = (label, ...children) => h("td", { "data-label": label }, h("div", {}, ...children));
const headRow = (labels) => h("thead", {}, h("tr", {}, labels.map((t) => h("th", { scope: "col" }, t))));

// ---- The delivered-vs-contracted bar, as SVG elements (no markup parsing) -------------
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

export function bar(contracted, delivered) {
  const W = 200;
  const scale = Math.max(contracted, delivered, 1);
  const pct = contracted ? Math.round((delivered / contracted) * 100) : null;
  const label = contracted
    ? `Delivered ${delivered} of ${contracted} contracted minutes (${pct}%)`
    : `Delivered ${delivered} minutes; none contracted in this period`;
  const at = (contracted / scale) * W;
  const graphic = svg(
    "svg",
    { class: "bar", viewBox: `0 0 ${W} 20`, preserveAspectRatio: "none", role: "img", "aria-label": label, focusable: "false" },
    svg("title", {}, label),
    svg("rect", { class: "bar-track", x: 0, y: 3, width: W, height: 14 }),
    svg("rect", { class: "bar-contracted", x: 0, y: 3, width: at, height: 14 }),
    svg("rect", { class: `bar-delivered ${delivered >= contracted ? "met" : "short"}`, x: 0, y: 6, width: (delivered / scale) * W, height: 8 }),
    svg("line", { class: "bar-target", x1: at, x2: at, y1: 0, y2: 20, "vector-effect": "non-scaling-stroke" }),
  );
  return h("div", { class: "bar-wrap" }, graphic, h("span", { class: "bar-pct", "aria-hidden": "true" }, pct === null ? "—" : `${pct}%`));
}

export async function render(main, { user }) {
  const here = stillHere();
  const coordinator = user.role === "coordinator";
  const consultant = user.role === "consultant";
  const reports = coordinator || consultant;

  const status = h("p", { id: "mentorship-status", class: "success", role: "status", hidden: true });
  const say = (text) => {
    status.textContent = text || "";
    status.hidden = !text;
  };

  // Who is who: coordinators list every account; consultants read the names-only
  // directory of the practitioners and trainees who share a specialty with them (their
  // possible mentees); practitioners and trainees know themselves.
  const [users, practitioners, trainees, backlog] = await Promise.all([
    coordinator ? api("/api/users") : [],
    consultant ? api("/api/people?role=practitioner") : [],
    consultant ? api("/api/people?role=trainee") : [],
    // The cases a consultant may name in a log: their arms' backlog, oldest flag first.
    consultant ? api("/api/mentorship/backlog") : [],
  ]);
  const names = new Map([...users, ...practitioners, ...trainees].map((u) => [u.id, u.name]));
  const person = (id, fallback) => (id === user.id ? `${user.name} (you)` : names.get(id) || fallback);

  let contracts = reports ? await api("/api/mentorship/contracts") : [];
  // Only cases the consultant sees in full may be named in a log.
  let cases = backlog.filter((b) => b.case?.patient).map((b) => ({ ...b.case, flag: b }));

  const today = ukToday();
  const initial = reports ? quarterOf(today) : yearTo(today);

  // ---- Summary ----------------------------------------------------------------------
  const summaryBox = h("div", { id: "summary" });
  function showSummary(range, rows) {
    if (!rows.length) {
      fill(summaryBox, h("p", { class: "notice" }, coordinator ? "No mentorship contract runs in this period." : "You have no mentorship contract running in this period. The coordinator sets contracts up."));
      return;
    }
    const labels = [coordinator ? "Consultant" : null, "Arm", "Contract", "Contracted", "Delivered", "Shortfall", "Delivered against contract", "Covered", "Missed weeks", "Backlog cases", "Oldest backlog"].filter(Boolean);
    fill(
      summaryBox,
      h(
        "div",
        { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Mentorship summary table" },
        h(
          "table",
          { class: "summary stack" },
          h("caption", { class: "sr-only" }, `Mentorship delivered against contract, ${dayText(range.from)} to ${dayText(range.to)}`),
          headRow(labels),
          h(
            "tbody",
            {},
            rows.map((r) =>
              h(
                "tr",
                { dataset: { contract: r.contract_id, specialty: r.specialty } },
                coordinator ? cell("Consultant", person(r.consultant_id, "Consultant")) : null,
                cell("Arm", title(r.specialty)),
                cell("Contract", `${r.minutes_per_week} min a week, ${r.weeks_per_year} weeks a year`, h("br"), h("span", { class: "muted" }, `${r.days} day${r.days === 1 ? "" : "s"} in this period`)),
                h("td", { "data-label": "Contracted", class: "num contracted" }, h("div", {}, minutesText(r.contracted_minutes))),
                h("td", { "data-label": "Delivered", class: "num delivered" }, h("div", {}, minutesText(r.delivered_minutes))),
                h("td", { "data-label": "Shortfall", class: `num shortfall${r.shortfall_minutes ? " short" : ""}` }, h("div", {}, minutesText(r.shortfall_minutes))),
                cell("Progress", bar(r.contracted_minutes, r.delivered_minutes)),
                h(
                  "td",
                  { "data-label": "Covered", class: "num covered" },
                  h(
                    "div",
                    {},
                    minutesText(r.covered_minutes || 0),
                    (r.covers || []).map((v) => h("span", { class: "muted cover" }, h("br"), `${person(v.consultant_id, "A consultant")} covered ${dayText(v.from)}–${dayText(v.to)}`)),
                  ),
                ),
                h("td", { "data-label": "Missed weeks", class: `num missed${r.missed_weeks ? " short" : ""}` }, h("div", {}, String(r.missed_weeks ?? 0))),
                h("td", { "data-label": "Backlog cases", class: "num backlog" }, h("div", {}, String(r.backlog_cases))),
                h(
                  "td",
                  { "data-label": "Oldest backlog", class: "num oldest" },
                  h("div", {}, r.oldest_backlog_days === null || r.oldest_backlog_days === undefined ? "—" : `${r.oldest_backlog_days} day${r.oldest_backlog_days === 1 ? "" : "s"}`),
                ),
              ),
            ),
          ),
        ),
      ),
      h(
        "p",
        { class: "hint legend" },
        h("span", { class: "key" }, h("span", { class: "swatch delivered", "aria-hidden": "true" }), " Delivered"),
        h("span", { class: "key" }, h("span", { class: "swatch contracted", "aria-hidden": "true" }), " Contracted (the line marks the contract)"),
        h("span", {}, "The backlog is as of the end of the period, or today. A missed week is one with no mentoring, by the consultant or a cover."),
      ),
    );
  }

  // ---- Logs -------------------------------------------------------------------------
  const logsBox = h("div", { id: "logs" });
  function showLogs(logs) {
    if (!logs.length) {
      fill(logsBox, h("p", { class: "muted" }, reports ? "No mentorship logged in this period." : "You are not named in any mentorship log in this period."));
      return;
    }
    logs.reverse(); // newest first
    fill(
      logsBox,
      h(
        "div",
        { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Mentorship logs table" },
        h(
          "table",
          { class: "logs stack" },
          h("caption", { class: "sr-only" }, "Mentorship logs, newest first"),
          headRow(["Date", "Consultant", "Arm", "Kind", "Time", "Mentees", "Cases discussed", "Learning points"]),
          h(
            "tbody",
            {},
            logs.map((l) => {
              const others = l.mentee_ids.filter((id) => id !== user.id && !names.has(id)).length;
              const known = l.mentee_ids.filter((id) => id === user.id || names.has(id));
              return h(
                "tr",
                { class: "log-row", dataset: { log: l.id } },
                cell("Date", dayTime(l.occurred_on)),
                cell("Consultant", person(l.consultant_id, "A consultant")),
                cell("Arm", title(l.specialty)),
                cell("Kind", KIND[l.kind] || humanise(l.kind)),
                cell("Time", minutesText(l.duration_minutes)),
                cell(
                  "Mentees",
                  h(
                    "ul",
                    { class: "plain" },
                    known.map((id) => h("li", {}, person(id, ""))),
                    others ? h("li", { class: "muted" }, `${known.length ? `${others} more` : `${others}`} mentee${others === 1 ? "" : "s"}`) : null,
                  ),
                ),
                cell(
                  "Cases discussed",
                  l.cases?.length
                    ? h("ul", { class: "plain" }, l.cases.map((c) => h("li", {}, c.patient ? h("a", { href: `#/cases/${c.id}` }, patientName(c)) : c.label)))
                    : h("span", { class: "muted" }, "None"),
                ),
                cell(
                  "Learning points",
                  l.learning_points.length ? h("ul", { class: "points" }, l.learning_points.map((p) => h("li", { class: "prose" }, p))) : h("span", { class: "muted" }, "None"),
                ),
              );
            }),
          ),
        ),
      ),
    );
  }

  // The period on screen, set only once both its summary and its logs have arrived; a
  // refresh started later (a new period, or after a save) makes an earlier one's results
  // stale, and they are dropped. A refresh after a save is for the period last asked for.
  let range = initial;
  let asked = null; // the period of the refresh in flight
  let latest = 0;
  async function refresh(next = asked || range) {
    const seq = ++latest;
    asked = next;
    const q = `from=${next.from}&to=${next.to}`;
    let summary, logs;
    try {
      [summary, logs] = await Promise.all([reports ? api(`/api/mentorship/summary?${q}`) : null, api(`/api/mentorship/logs?${q}`)]);
    } catch (err) {
      if (seq !== latest) return false;
      asked = null;
      throw err;
    }
    if (seq !== latest) return false;
    asked = null;
    range = next;
    if (reports) showSummary(next, summary);
    showLogs(logs);
    return true;
  }
  const period = windowForm("period-form", initial, async (r) => {
    if (await refresh(r)) say(null);
  });
  await refresh();

  // ---- Contracts --------------------------------------------------------------------
  const contractsBox = h("div", { id: "contracts" });
  const showContracts = () =>
    fill(
      contractsBox,
      contracts.length
        ? h(
            "div",
            { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Contracts table" },
            h(
              "table",
              { class: "contracts stack" },
              h("caption", { class: "sr-only" }, "Mentorship contracts"),
              headRow([coordinator ? "Consultant" : null, "Arm", "Minutes a week", "Weeks a year", "Starts", "Ends"].filter(Boolean)),
              h(
                "tbody",
                {},
                [...contracts]
                  .sort((a, b) => (a.starts_on < b.starts_on ? 1 : -1))
                  .map((c) =>
                    h(
                      "tr",
                      { dataset: { contract: c.id } },
                      coordinator ? cell("Consultant", person(c.consultant_id, "Consultant")) : null,
                      cell("Arm", title(c.specialty)),
                      cell("Minutes a week", String(c.minutes_per_week)),
                      cell("Weeks a year", String(c.weeks_per_year)),
                      cell("Starts", dayTime(c.starts_on)),
                      cell("Ends", c.ends_on ? dayTime(c.ends_on) : "Open-ended"),
                    ),
                  ),
              ),
            ),
          )
        : h("p", { class: "muted" }, coordinator ? "No contracts yet." : "You have no mentorship contract yet."),
    );
  if (reports) showContracts();

  const sections = [];
  if (consultant) sections.push(logForm());
  if (reports) {
    sections.push(
      h(
        "section",
        { id: "summary-section", "aria-labelledby": "summary-h" },
        h("h2", { id: "summary-h" }, "Delivered against contract"),
        period,
        summaryBox,
      ),
    );
  }
  sections.push(
    h(
      "section",
      { id: "logs-section", "aria-labelledby": "logs-h" },
      h("h2", { id: "logs-h" }, coordinator ? "All mentorship logs" : consultant ? "Your mentorship logs" : "Mentorship you took part in"),
      reports ? h("p", { class: "hint" }, "For the period above.") : period,
      logsBox,
    ),
  );
  if (reports) {
    sections.push(
      h(
        "section",
        { id: "contracts-section", "aria-labelledby": "contracts-h" },
        h("h2", { id: "contracts-h" }, coordinator ? "Contracts" : "Your contracts"),
        contractsBox,
        coordinator ? contractForm() : null,
        coordinator ? coverForm() : null,
      ),
    );
  }

  if (!here()) return;
  fill(main, h("h1", {}, "Mentorship"), status, sections);

  // ---- The consultant's log form --------------------------------------------------------
  function logForm() {
    const f = checkedForm();
    const box = errorBox("log-error");
    const date = f.add(
      "occurred_on",
      field("Date", h("input", { type: "date", name: "occurred_on", id: "log-date", value: today, max: today })),
      (v) => (!isDay(v) ? "choose the date" : v > ukToday() ? "must not be in the future" : null),
    );
    const minutes = f.add(
      "duration_minutes",
      field("Duration (minutes)", h("input", { type: "number", name: "duration_minutes", id: "log-minutes", min: 1, max: 600, step: 1, value: "60", inputmode: "numeric" })),
      whole(1, 600),
    );
    const kind = f.add("kind", field("Kind", select({ name: "kind", id: "log-kind" }, KINDS, "case_review")), (v) => (v ? null : "choose the kind"));
    const arm = field("Arm (specialty)", select({ name: "specialty", id: "log-specialty" }, []), "The contract this time counts towards.");
    f.add("specialty", arm, (v) => (arm.hidden || v ? null : "choose the arm"));

    // The arm is asked for only when the date does not settle it, or (`always`) when the
    // server has said it must be.
    const showArm = (always = false) => {
      const day = date.control.value;
      const running = [...new Set(contracts.filter((c) => c.starts_on <= day && (!c.ends_on || day <= c.ends_on)).map((c) => c.specialty))];
      const settled = running.length === 1 && !always;
      const choices = settled ? [] : running.length > 1 ? running : user.specialties || [];
      const was = arm.control.value;
      fill(arm.control, h("option", { value: "" }, "Choose…"), choices.map((s) => h("option", { value: s, selected: s === was }, title(s))));
      arm.hidden = settled;
      if (arm.hidden) arm.setError(null);
    };
    date.control.addEventListener("change", () => showArm());
    showArm();

    // Mentees: practitioners and trainees from the directory, by name, grouped by role.
    const menteeError = h("p", { class: "field-error", id: "log-mentees-error", hidden: true });
    const group = (role, legend, people) =>
      people.length
        ? h(
            "fieldset",
            { class: "mentee-group", id: `log-mentees-${role}` },
            h("legend", {}, legend),
            h(
              "div",
              { class: "checks stacked" },
              people.map((p) =>
                h(
                  "label",
                  { class: "check", for: `mentee-${p.id}` },
                  h("input", { type: "checkbox", id: `mentee-${p.id}`, name: "mentee_ids", value: p.id }),
                  h("span", {}, p.name, p.specialties?.length ? h("span", { class: "muted" }, ` · ${p.specialties.map(title).join(", ")}`) : null),
                ),
              ),
            ),
          )
        : null;
    const menteeBoxes = h("div", { class: "mentee-groups" }, group("practitioner", "Practitioners", practitioners), group("trainee", "Trainees", trainees));
    const mentees = h(
      "fieldset",
      { id: "log-mentees", "aria-describedby": "log-mentees-error" },
      h("legend", {}, "Mentees"),
      practitioners.length || trainees.length
        ? [h("p", { class: "hint" }, "Practitioners and trainees who share a specialty with you."), menteeBoxes]
        : h("p", { class: "hint" }, "No practitioners or trainees share a specialty with you. Ask the coordinator to check their accounts."),
      menteeError,
    );
    const menteeProblem = (message) => {
      menteeError.textContent = message || "";
      menteeError.hidden = !message;
      mentees.classList.toggle("invalid", Boolean(message));
    };
    const chosenMentees = () => [...menteeBoxes.querySelectorAll("input:checked")].map((i) => i.value);

    // Cases discussed: the backlog, oldest flag first. Ticking a case ticks its referrer
    // as a mentee when they are in the directory.
    const caseError = h("p", { class: "field-error", id: "log-cases-error", hidden: true });
    const caseBoxes = h("div", { class: "checks stacked" });
    const caseHint = h("p", { class: "hint" });
    const showCases = () => {
      caseHint.textContent = cases.length
        ? "Cases flagged for mentorship in your arms. Logging a case takes it off the backlog."
        : "No cases of your arms are waiting on the mentorship backlog.";
      caseBoxes.hidden = !cases.length;
      fill(
        caseBoxes,
        cases.map((c) =>
          h(
            "label",
            { class: "check", for: `case-${c.id}` },
            h("input", {
              type: "checkbox",
              id: `case-${c.id}`,
              name: "case_ids",
              value: c.id,
              onchange: (e) => {
                if (!e.currentTarget.checked) return;
                const box = [...menteeBoxes.querySelectorAll("input")].find((x) => x.value === c.referrer_id);
                if (box) box.checked = true;
              },
            }),
            h(
              "span",
              {},
              `${patientName(c)} · ${c.body_site} · ${title(c.flag.specialty)}`,
              c.referrer_id && names.has(c.referrer_id) ? h("span", { class: "muted" }, ` · referred by ${names.get(c.referrer_id)}`) : null,
              " ",
              h("span", { class: "tag flagged" }, `flagged ${dayText(c.flag.flagged_on)}`),
            ),
          ),
        ),
      );
    };
    showCases();
    const caseSet = h(
      "fieldset",
      { id: "log-cases", "aria-describedby": "log-cases-error" },
      h("legend", {}, "Cases discussed (optional)"),
      caseHint,
      caseBoxes,
      caseError,
    );
    const caseProblem = (message) => {
      caseError.textContent = message || "";
      caseError.hidden = !message;
      caseSet.classList.toggle("invalid", Boolean(message));
    };

    const points = f.add(
      "learning_points",
      field("Learning points (optional)", h("textarea", { name: "learning_points", id: "log-points", rows: 4 }), "One per line."),
      (v) => (String(v).split("\n").some((p) => p.trim().length > 1000) ? "each point must be at most 1000 characters" : null),
    );
    const submit = h("button", { type: "submit", id: "log-submit" }, "Save log");
    const form = h(
      "form",
      { id: "log-form", class: "card", novalidate: true, "aria-labelledby": "log-form-h" },
      h("h2", { id: "log-form-h" }, "Log mentorship"),
      h("div", { class: "row" }, date, minutes, kind, arm),
      h("div", { class: "two" }, mentees, caseSet),
      points,
      box,
      submit,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      box.show(null);
      menteeProblem(null);
      caseProblem(null);
      let ok = f.checkAll();
      const ids = chosenMentees();
      if (!ids.length) {
        menteeProblem("Choose at least one mentee.");
        if (ok) (menteeBoxes.querySelector("input") || submit).focus();
        ok = false;
      }
      if (!ok) return;
      const caseIds = [...caseBoxes.querySelectorAll("input:checked")].map((i) => i.value);
      try {
        const log = await busy(submit, "Saving…", () =>
          api("/api/mentorship/logs", {
            method: "POST",
            body: {
              consultant_id: user.id,
              mentee_ids: ids,
              occurred_on: date.control.value,
              duration_minutes: Number(minutes.control.value),
              kind: kind.control.value,
              case_ids: caseIds,
              learning_points: points.control.value.split("\n").map((p) => p.trim()).filter(Boolean),
              specialty: arm.hidden ? undefined : arm.control.value,
            },
          }),
        );
        const cleared = log.unflagged_case_ids?.length || 0;
        form.reset();
        f.clear();
        date.control.value = ukToday();
        showArm();
        // The cases it discussed have left the backlog.
        cases = cases.filter((c) => !log.unflagged_case_ids?.includes(c.id));
        showCases();
        await refresh().catch((err) => box.show(err));
        say(
          `Mentorship logged: ${minutesText(log.duration_minutes)} of ${KIND[log.kind].toLowerCase()} on ${dayText(log.occurred_on)} (${title(log.specialty)})` +
            (cleared ? `; ${cleared} case${cleared === 1 ? "" : "s"} taken off the backlog.` : "."),
        );
      } catch (err) {
        const message = why(err);
        if (err.field?.startsWith("mentee_ids")) {
          menteeProblem(message);
          (menteeBoxes.querySelector("input") || submit).focus();
        } else if (err.code === "specialty_required") {
          // The contracts have changed since the page opened: reload them, and ask for the
          // arm (its picker may have been hidden, the old list settling it).
          try {
            contracts = await api("/api/mentorship/contracts");
            showContracts();
          } catch {
            // Keep the list we have: the arm is asked for anyway.
          }
          showArm(true);
          arm.setError(message);
          arm.control.focus();
        } else if (err.field?.startsWith("case_ids")) {
          caseProblem(message);
          caseBoxes.querySelector("input")?.focus();
        } else {
          const wrap = err.field && f.get(err.field);
          if (wrap && !wrap.hidden) {
            wrap.setError(message);
            wrap.control.focus();
          } else {
            box.show(message);
          }
        }
      }
    });
    return form;
  }

  // ---- The coordinator's cover form: another consultant of the arm covers a contract ----------
  function coverForm() {
    const box = errorBox("cover-error");
    const contractName = (c) => `${person(c.consultant_id, "Consultant")} · ${title(c.specialty)} · from ${dayText(c.starts_on)}`;
    const which = field("Contract", select({ name: "contract", id: "cover-contract" }, [["", contracts.length ? "Choose…" : "No contracts"], ...contracts.map((c) => [c.id, contractName(c)])]));
    const consultants = users.filter((u) => u.active && u.role === "consultant");
    const who = field("Covering consultant", select({ name: "consultant_id", id: "cover-consultant" }, [["", "Choose…"], ...consultants.map((u) => [u.id, u.name])]));
    const from = field("From", h("input", { type: "date", name: "from", id: "cover-from" }));
    const to = field("To", h("input", { type: "date", name: "to", id: "cover-to" }));
    const submit = h("button", { type: "submit", id: "cover-submit" }, "Assign cover");
    const form = h(
      "form",
      { id: "cover-form", class: "card", novalidate: true, "aria-labelledby": "cover-form-h" },
      h("h3", { id: "cover-form-h" }, "Cover for leave"),
      h("p", { class: "hint" }, "The covering consultant's mentorship in the arm on these days counts to the contract."),
      h("div", { class: "row" }, which, who, from, to),
      box,
      submit,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      box.show(null);
      if (!which.control.value || !who.control.value || !isDay(from.control.value) || !isDay(to.control.value)) {
        box.show("Choose the contract, the covering consultant and both dates.");
        return;
      }
      try {
        const v = await busy(submit, "Saving…", () =>
          api(`/api/mentorship/contracts/${which.control.value}/cover`, {
            method: "POST",
            body: { consultant_id: who.control.value, from: from.control.value, to: to.control.value },
          }),
        );
        form.reset();
        say(`Cover assigned: ${person(v.consultant_id, "the consultant")} covers ${title(v.specialty)} from ${dayText(v.from)} to ${dayText(v.to)}.`);
        await refresh();
      } catch (err) {
        box.show(COVER_CODES[err?.code] || why(err));
      }
    });
    return form;
  }

  // ---- The coordinator's contract form ----------------------------------------------------
  function contractForm() {
    const f = checkedForm();
    const box = errorBox("contract-error");
    const consultants = users.filter((u) => u.active && u.role === "consultant");
    const who = f.add(
      "consultant_id",
      field(
        "Consultant",
        select({ name: "consultant_id", id: "contract-consultant" }, [["", consultants.length ? "Choose…" : "No consultants"], ...consultants.map((u) => [u.id, u.name])]),
      ),
      (v) => (v ? null : "choose the consultant"),
    );
    const arm = f.add("specialty", field("Arm (specialty)", select({ name: "specialty", id: "contract-specialty" }, [["", "Choose the consultant first"]])), (v) => (v ? null : "choose the arm"));
    who.control.addEventListener("change", () => {
      const u = consultants.find((x) => x.id === who.control.value);
      const was = arm.control.value;
      fill(arm.control, h("option", { value: "" }, u ? "Choose…" : "Choose the consultant first"), (u?.specialties || []).map((s) => h("option", { value: s, selected: s === was }, title(s))));
    });
    const perWeek = f.add(
      "minutes_per_week",
      field("Minutes a week", h("input", { type: "number", name: "minutes_per_week", id: "contract-minutes", min: 1, max: 2400, step: 1, value: "60", inputmode: "numeric" })),
      whole(1, 2400),
    );
    const weeks = f.add(
      "weeks_per_year",
      field("Weeks a year", h("input", { type: "number", name: "weeks_per_year", id: "contract-weeks", min: 1, max: 52, step: 1, value: "52", inputmode: "numeric" }), "e.g. 42 for a term-time arm."),
      whole(1, 52),
    );
    const starts = f.add("starts_on", field("Starts on", h("input", { type: "date", name: "starts_on", id: "contract-starts", value: quarterOf(today).from })), (v) => (isDay(v) ? null : "choose the first day"));
    const ends = f.add("ends_on", field("Ends on (optional)", h("input", { type: "date", name: "ends_on", id: "contract-ends" }), "Leave empty for an open-ended contract."), (v) =>
      !v ? null : !isDay(v) ? "choose a day or leave empty" : v < starts.control.value ? "must be on or after the start" : null,
    );
    const submit = h("button", { type: "submit", id: "contract-submit" }, "Create contract");
    const form = h(
      "form",
      { id: "contract-form", class: "card", novalidate: true, "aria-labelledby": "contract-form-h" },
      h("h3", { id: "contract-form-h" }, "New contract"),
      h("div", { class: "row" }, who, arm, perWeek, weeks),
      h("div", { class: "row" }, starts, ends),
      box,
      submit,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      box.show(null);
      if (!f.checkAll()) return;
      let c;
      try {
        c = await busy(submit, "Creating…", () =>
          api("/api/mentorship/contracts", {
            method: "POST",
            body: {
              consultant_id: who.control.value,
              specialty: arm.control.value,
              minutes_per_week: Number(perWeek.control.value),
              weeks_per_year: Number(weeks.control.value),
              starts_on: starts.control.value,
              ends_on: ends.control.value || null,
            },
          }),
        );
      } catch (err) {
        const wrap = err.field && f.get(err.field);
        if (wrap) {
          wrap.setError(why(err));
          wrap.control.focus();
        } else {
          box.show(why(err));
        }
        return;
      }
      // The contract exists: say so first; bringing the lists up to date is separate.
      form.reset();
      f.clear();
      starts.control.value = quarterOf(ukToday()).from;
      who.control.dispatchEvent(new Event("change"));
      say(`Contract created: ${person(c.consultant_id, "the consultant")}, ${title(c.specialty)}, ${c.minutes_per_week} minutes a week for ${c.weeks_per_year} weeks a year from ${dayText(c.starts_on)}.`);
      try {
        contracts = await api("/api/mentorship/contracts");
        showContracts();
        await refresh();
      } catch (err) {
        box.show(`The contract was created, but the lists could not be brought up to date (${why(err).replace(/\.$/, "")}). Reload the page to see it.`);
      }
    });
    return form;
  }
}

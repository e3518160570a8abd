// "My cases": the caller's own bookings in every state (awaiting triage, returned with its
// reason, booked, listed…), with the session each is in and where its outcome stands,
// newest sessions first.
import { api } from "../api.js";
import { fill, h, humanise, time } from "../ui.js";
import { formatNhsNumber } from "../nhs.js";
import { stillHere } from "../forms.js";
import { returnReason } from "../proforma.js";

/**
 * The sessions the given cases are booked into, by id. A case is always booked before its
 * session starts, so the sessions starting after the earliest booking hold them all.
 */
export async function sessionsFor(cases) {
  const times = cases.map((c) => Date.parse(c.booked_at)).filter((t) => !Number.isNaN(t));
  const from = times.length ? new Date(Math.min(...times) - 24 * 3600 * 1000).toISOString() : null;
  const list = await api(from ? `/api/sessions?from=${encodeURIComponent(from)}` : "/api/sessions");
  return new Map(list.map((s) => [s.id, s]));
}

/** What a case's state says about its outcome (the list carries no outcome). */
export function outcomeStatus(state) {
  switch (state) {
    case "outcome_signed":
      return ["signed", "Signed"];
    case "discussed":
      return ["draft", "Awaiting signature"];
    case "in_discussion":
      return ["draft", "Being discussed"];
    case "withdrawn":
    case "deferred":
      return ["none", "Not applicable"];
    case "listed":
      return ["none", "Standard plan, confirmed at the meeting"];
    case "awaiting_triage":
    case "returned":
      return ["none", "Not on the agenda yet"];
    default:
      return ["none", "Not yet discussed"];
  }
}

/** A patient's name for a case, or the de-identified label the server gave. */
export const patientName = (c) => (c.patient ? `${c.patient.given_name} ${c.patient.family_name}` : c.label || "Case");

const cell = (label, ...children) => h("td", { "data-label": label }, h("div", {}, ...children));

export async function render(main) {
  const here = stillHere();
  const cases = await api("/api/cases?mine=true");
  const sessions = cases.length ? await sessionsFor(cases).catch(() => new Map()) : new Map();
  const start = (c) => Date.parse(sessions.get(c.session_id)?.starts_at || c.booked_at || 0);
  // Upcoming sessions first (soonest at the top), then past ones (most recent first).
  const now = Date.now();
  const upcoming = cases.filter((c) => start(c) >= now).sort((a, b) => start(a) - start(b));
  const past = cases.filter((c) => start(c) < now).sort((a, b) => start(b) - start(a));

  const table = (rows, caption) =>
    h(
      "table",
      { class: "cases stack" },
      h("caption", { class: "sr-only" }, caption),
      h(
        "thead",
        {},
        h("tr", {}, ["Patient", "NHS number", "Body site", "Session", "State", "Outcome", ""].map((t) => h("th", { scope: "col" }, t ? t : h("span", { class: "sr-only" }, "Actions")))),
      ),
      h(
        "tbody",
        {},
        rows.map((c) => {
          const s = sessions.get(c.session_id);
          const [outcomeClass, outcomeText] = outcomeStatus(c.state);
          return h(
            "tr",
            { class: `case-row state-${c.state}`, dataset: { case: c.id } },
            cell("Patient", h("a", { href: `#/cases/${c.id}` }, patientName(c)), c.urgency === "urgent" ? [" ", h("span", { class: "tag urgent" }, "urgent")] : null),
            cell("NHS number", h("span", { class: "nhs" }, c.patient ? formatNhsNumber(c.patient.nhs_number) : "—")),
            cell("Body site", c.body_site),
            cell(
              "Session",
              s ? [h("span", { class: "session-title" }, s.title), h("br"), time(s.starts_at)] : h("span", { class: "muted" }, "Session not found"),
              c.needs_rebooking ? [h("br"), h("span", { class: "tag urgent" }, "needs rebooking")] : null,
            ),
            cell(
              "State",
              h("span", { class: `tag state-${c.state}` }, humanise(c.state)),
              c.state === "returned"
                ? [h("br"), h("span", { class: "return-reason" }, returnReason(c.return_reason)), h("br"), h("a", { href: `#/cases/${c.id}`, "aria-label": `Edit and resubmit the case of ${patientName(c)}` }, "Edit and resubmit")]
                : null,
            ),
            cell("Outcome", h("span", { class: `tag ${outcomeClass}` }, outcomeText)),
            cell("", h("a", { href: `#/cases/${c.id}`, class: "button secondary small", "aria-label": `Open the case of ${patientName(c)}` }, "Open")),
          );
        }),
      ),
    );

  if (!here()) return;
  fill(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "My cases"), h("a", { href: "#/schedule", class: "button" }, "Book a case")),
    cases.length
      ? [
          h("h2", {}, `Upcoming (${upcoming.length})`),
          upcoming.length ? table(upcoming, "Cases booked into upcoming sessions") : h("p", { class: "muted" }, "No cases in upcoming sessions."),
          past.length ? [h("h2", {}, `Past (${past.length})`), table(past, "Cases from past sessions")] : null,
        ]
      : h("p", { class: "notice" }, "You have not booked any cases yet. Choose a session in the schedule to book one."),
  );
}

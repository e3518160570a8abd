// "Letters due" (coordinators): the communication clocks a signed outcome starts (the
// referrer told by the end of the next working day, the patient's letter within two
// working days), due or overdue, from `GET /api/letters/due?state=`. A server without that
// list answers 404: the page says it is not available yet instead of failing. Each row:
// which clock, when it started (the first signing), the day it is due, overdue or not.
import { api } from "../api.js";
import { errorBox, fill, h, humanise, time } from "../ui.js";
import { stillHere } from "../forms.js";
import { dayText, isDay } from "../days.js";
import { LETTER_KIND } from "../letters.js";

const CLOCK = { referrer_informed: "Referrer informed (clinic letter)", patient_letter_sent: "Patient's letter sent" };
const dueText = (v) => (!v ? "—" : isDay(v) ? dayText(v) : time(v));

export async function render(main) {
  const here = stillHere();
  const error = errorBox("due-error");
  const choice = h("select", { id: "due-state" }, h("option", { value: "" }, "Due and overdue"), h("option", { value: "due" }, "Due, not yet late"), h("option", { value: "overdue" }, "Overdue"));
  const body = h("div", { id: "due-list" });

  const show = async () => {
    error.show(null);
    fill(body, h("p", {}, "Loading…"));
    let items;
    try {
      items = await api(choice.value ? `/api/letters/due?state=${choice.value}` : "/api/letters/due");
    } catch (err) {
      if (err.status === 404) {
        fill(body, h("p", { class: "notice", id: "due-unavailable" }, h("strong", {}, "Not available yet. "), "This server does not list letters due yet. The print-and-post list shows the letters waiting to be posted."));
        return;
      }
      fill(body);
      error.show(err);
      return;
    }
    const rows = Array.isArray(items) ? items : items?.items || [];
    if (!rows.length) {
      fill(body, h("p", { class: "muted" }, choice.value === "overdue" ? "No letter is overdue." : "Nothing is due."));
      return;
    }
    fill(
      body,
      h(
        "table",
        { class: "due" },
        h("caption", { class: "sr-only" }, choice.value === "overdue" ? "Letters overdue" : "Letters due"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Clock"), h("th", { scope: "col" }, "Started (signed)"), h("th", { scope: "col" }, "Due by"), h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Case"))),
        h(
          "tbody",
          {},
          rows.map((r) =>
            h(
              "tr",
              {},
              h("td", {}, CLOCK[r.clock] || LETTER_KIND[r.kind] || humanise(r.clock || r.kind || "letter")),
              h("td", {}, r.started_at ? time(r.started_at) : "—"),
              h("td", {}, r.due_on ? dueText(r.due_on) : dueText(r.due_at)),
              h("td", {}, r.overdue ? h("span", { class: "tag urgent" }, "overdue") : h("span", { class: "tag state-booked" }, "due")),
              h("td", {}, r.case_id ? h("a", { href: `#/cases/${r.case_id}` }, "Open case") : "—"),
            ),
          ),
        ),
      ),
    );
  };
  choice.addEventListener("change", show);
  if (!here()) return;
  fill(
    main,
    h("h1", {}, "Letters due"),
    h("p", { class: "hint" }, "Each signed outcome starts two clocks: the referrer is told by the end of the next working day, and the patient's letter is sent within two working days."),
    h("div", { class: "field narrow-field" }, h("label", { for: "due-state" }, "Show"), choice),
    error,
    h("section", { class: "card", "aria-label": "Letters" }, body),
  );
  await show();
}

// The schedule: a week of MDT sessions (Monday to Sunday in the viewer's own zone), with
// booking and joining links by role (invitees: the meetings they are invited to), and
// publish, move and cancel for coordinators.
import { api } from "../api.js";
import { clock, errorBox, explain, field, fill, h, humanise, time, when } from "../ui.js";
import { busy, checkedForm, select, stillHere } from "../forms.js";
import { fromUkWallClock, isDay, rfc3339, ukWallClock, ukWhen, ukZoneName } from "../days.js";

// Kept while the app is open, so coming back shows the same week and filter.
const remembered = { week: null, specialty: "" };

/** Local midnight of the Monday of the week containing `date`. */
function mondayOf(date) {
  const d = new Date(date.getFullYear(), date.getMonth(), date.getDate());
  const back = (d.getDay() + 6) % 7;
  d.setDate(d.getDate() - back);
  return d;
}

/** `days` calendar days after `date` (local; safe across clock changes). */
function addDays(date, days) {
  const d = new Date(date);
  d.setDate(d.getDate() + days);
  return d;
}

const dayKey = (d) => `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
const columnTitle = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });
const rangeTitle = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "long", year: "numeric" });

/** Whether the session takes bookings now (the server checks again). */
export function openForBooking(s, now = Date.now()) {
  return (s.state === "scheduled" || s.state === "published") && s.booked < s.capacity && now < Date.parse(s.booking_closes_at);
}

/** "must be in the future" → "Must be in the future." */
const sentence = (s) => {
  const t = String(s || "").trim();
  if (!t) return t;
  return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".");
};

/** Why the server would not move a session, in words for the form. */
export function moveRefusal(err) {
  if (err?.field === "starts_at" && err.message) return sentence(`the new start ${err.message}`);
  if ([403, 404, 409, 422].includes(err?.status) && err.message) return sentence(err.message);
  return explain(err);
}

export async function render(main, { user }) {
  const here = stillHere();
  const may = {
    book: (s) =>
      user.role === "coordinator" ||
      ((user.role === "practitioner" || user.role === "consultant") && (user.specialties || []).includes(s.specialty)),
    join: (s, mine) => {
      if (s.state === "cancelled" || s.state === "closed") return false;
      switch (user.role) {
        case "coordinator":
          return true;
        case "consultant":
          return s.chair_id === user.id || (user.specialties || []).includes(s.specialty) || invited.has(s.id);
        case "practitioner":
          return mine.has(s.id) || invited.has(s.id);
        case "trainee":
          return s.teaching || invited.has(s.id);
        default:
          return false;
      }
    },
    manage: user.role === "coordinator",
  };

  // Practitioners join the meetings they have booked cases into.
  let mine = new Set();
  if (user.role === "practitioner") {
    try {
      const cases = await api("/api/cases?mine=true");
      mine = new Set(cases.filter((c) => c.state !== "withdrawn" && c.state !== "deferred").map((c) => c.session_id));
    } catch {
      /* the schedule still works without the join links */
    }
  }

  // Everyone but coordinators joins the meetings they are invited to (as a learner, a
  // trainee or a guest of another specialty): kind by session id.
  let invited = new Map();
  if (user.role !== "coordinator") {
    try {
      invited = new Map((await api("/api/me/invitations")).map((i) => [i.session_id, i.kind]));
    } catch {
      /* the schedule still works without them */
    }
  }

  const specialties = await api("/api/specialties").catch(() => []);
  const filter = select(
    { id: "specialty-filter", name: "specialty" },
    [["", "All specialties"], ...specialties.map((s) => [s, humanise(s).replace(/^./, (c) => c.toUpperCase())])],
    remembered.specialty,
  );
  const heading = h("h1", {}, "Schedule");
  const range = h("p", { class: "week-range", id: "week-range", "aria-live": "polite" });
  const status = h("p", { class: "notice", role: "status", hidden: true, id: "schedule-status" });
  const error = errorBox("schedule-error");
  const grid = h("div", { class: "week", id: "week", "aria-labelledby": "week-range" });

  const prev = h("button", { type: "button", class: "secondary", id: "prev-week" }, "← Previous week");
  const thisWeek = h("button", { type: "button", class: "secondary", id: "this-week" }, "This week");
  const next = h("button", { type: "button", class: "secondary", id: "next-week" }, "Next week →");
  const nextSession = h("button", { type: "button", class: "secondary", id: "next-session" }, "Next session");

  const toolbar = h(
    "div",
    { class: "week-nav" },
    prev,
    thisWeek,
    next,
    nextSession,
    h("label", { for: "specialty-filter", class: "inline-label" }, "Specialty"),
    filter,
  );
  if (!here()) return;
  fill(main, heading, toolbar, range, status, error, grid);

  let week = remembered.week || mondayOf(new Date());

  function say(text) {
    status.textContent = text || "";
    status.hidden = !text;
  }

  const query = (params) => {
    const q = new URLSearchParams(params);
    if (filter.value) q.set("specialty", filter.value);
    return `/api/sessions?${q}`;
  };

  async function sessionsOf(start) {
    const end = addDays(start, 7);
    return api(query({ from: start.toISOString(), to: end.toISOString() }));
  }

  /** The first session after `from` that is not cancelled, or null. */
  async function firstAfter(from) {
    const list = await api(query({ from: from.toISOString() }));
    return list.find((s) => s.state !== "cancelled") || null;
  }

  function slot(s) {
    const free = Math.max(0, s.capacity - s.booked);
    const open = openForBooking(s);
    const ends = new Date(Date.parse(s.starts_at) + s.duration_minutes * 60000).toISOString();
    const actions = h("div", { class: "slot-actions" });
    if (open && may.book(s)) {
      actions.append(h("a", { class: "button", href: `#/book/${s.id}`, "aria-label": `Book a case into ${s.title}, ${when(s.starts_at)}` }, "Book a case"));
    }
    if (may.join(s, mine)) {
      actions.append(h("a", { class: "button secondary", href: `#/meeting/${s.id}`, "aria-label": `Join ${s.title}, ${when(s.starts_at)}` }, "Join meeting"));
    }
    if (may.manage && s.state === "scheduled") {
      actions.append(
        h("button", { type: "button", class: "secondary", onclick: () => publish(s), "aria-label": `Publish the agenda of ${s.title}, ${when(s.starts_at)}` }, "Publish agenda"),
      );
    }
    let moveForm = null;
    if (may.manage && (s.state === "scheduled" || s.state === "published")) {
      const opener = h(
        "button",
        { type: "button", class: "secondary", id: `move-${s.id}-open`, "aria-expanded": "false", "aria-controls": `move-${s.id}`, "aria-label": `Move ${s.title}, ${when(s.starts_at)}` },
        "Move",
      );
      moveForm = mover(s, opener);
      opener.addEventListener("click", () => moveForm.toggle());
      actions.append(
        opener,
        h("button", { type: "button", class: "danger", onclick: () => cancel(s), "aria-label": `Cancel ${s.title}, ${when(s.starts_at)}` }, "Cancel"),
      );
    }
    let availability;
    if (s.state === "cancelled") availability = "Cancelled";
    else if (free === 0) availability = "Full";
    else availability = `${free} of ${s.capacity} places free`;
    const closes = Date.parse(s.booking_closes_at);
    return h(
      "article",
      { class: `slot${free === 0 ? " full" : ""}${open ? "" : " closed"}`, dataset: { session: s.id, specialty: s.specialty } },
      h("h3", {}, s.title),
      h("p", { class: "slot-time" }, time(s.starts_at, clock), "–", time(ends, clock)),
      h(
        "p",
        { class: "slot-tags" },
        h("span", { class: `tag state-${s.state}` }, humanise(s.state)),
        s.teaching ? h("span", { class: "tag teaching" }, "teaching") : null,
        invited.has(s.id) ? h("span", { class: `tag invited kind-${invited.get(s.id)}` }, `invited as ${invited.get(s.id)}`) : null,
      ),
      h("p", { class: "slot-places" }, availability),
      s.state === "scheduled" || s.state === "published"
        ? h("p", { class: "slot-cutoff muted" }, closes > Date.now() ? "Booking closes " : "Booking closed ", time(s.booking_closes_at))
        : null,
      actions.childNodes.length ? actions : null,
      moveForm,
    );
  }

  /**
   * The inline form that moves a session to a new UK date and time (hidden until its
   * Move button opens it). The server decides whether the session may move; its refusal
   * shows in the form.
   */
  function mover(s, opener) {
    const id = `move-${s.id}`;
    const was = ukWallClock(s.starts_at);
    const f = checkedForm();
    const dateF = f.add("date", field("New date", h("input", { type: "date", name: "date", id: `${id}-date`, value: was.date, required: true })), (v) =>
      isDay(v) ? null : "choose the new date",
    );
    const timeF = f.add(
      "time",
      field("New start time (UK time)", h("input", { type: "time", name: "time", id: `${id}-time`, value: was.time, step: 60, required: true })),
      (v) => (/^[0-9]{2}:[0-9]{2}$/.test(v) ? null : "choose the new start time"),
    );
    const box = errorBox(`${id}-error`);
    const submit = h("button", { type: "submit", id: `${id}-submit` }, "Move session");
    const close = h("button", { type: "button", class: "secondary", id: `${id}-close` }, "Close");
    const form = h(
      "form",
      { id, class: "move-form", novalidate: true, hidden: true, "aria-labelledby": `${id}-h`, "aria-describedby": `${id}-now` },
      h("h4", { id: `${id}-h` }, `Move ${s.title}`),
      h("p", { class: "hint", id: `${id}-now` }, `Now ${ukWhen(s.starts_at)} (${ukZoneName(s.starts_at)}).`, s.booked ? " Its referrers are emailed the new time." : null),
      dateF,
      timeF,
      box,
      h("div", { class: "slot-actions" }, submit, close),
    );
    const shut = () => {
      form.hidden = true;
      opener.setAttribute("aria-expanded", "false");
      box.show(null);
      f.clear();
      opener.focus();
    };
    form.toggle = () => {
      if (!form.hidden) return shut();
      form.hidden = false;
      opener.setAttribute("aria-expanded", "true");
      dateF.control.focus();
    };
    close.addEventListener("click", shut);
    form.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        shut();
      }
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      box.show(null);
      if (!f.checkAll()) return;
      const at = fromUkWallClock(dateF.control.value, timeF.control.value);
      if (!at) {
        timeF.setError("There is no such time in the UK that day (the clocks go forward): choose another.");
        timeF.control.focus();
        return;
      }
      let moved;
      try {
        moved = await busy(submit, "Moving…", () => api(`/api/sessions/${s.id}/reschedule`, { method: "POST", body: { starts_at: rfc3339(at) } }));
      } catch (err) {
        box.show(moveRefusal(err));
        return;
      }
      await show(mondayOf(new Date(moved.starts_at)));
      say(
        `Moved ${moved.title} from ${ukWhen(s.starts_at)} to ${ukWhen(moved.starts_at)} (UK time).` +
          (moved.booked ? ` The referrer${moved.booked === 1 ? " of its case is" : "s of its cases are"} emailed the new time.` : ""),
      );
      document.getElementById(`move-${moved.id}-open`)?.focus();
    });
    return form;
  }

  async function show(start, { jumpIfEmpty = false } = {}) {
    error.show(null);
    let sessions;
    try {
      sessions = await sessionsOf(start);
      if (jumpIfEmpty && !sessions.some((s) => s.state !== "cancelled")) {
        const first = await firstAfter(new Date(Math.max(Date.now(), start.getTime())));
        if (first) {
          const was = start;
          start = mondayOf(new Date(first.starts_at));
          sessions = await sessionsOf(start);
          say(
            `There are no ${filter.value ? humanise(filter.value) + " " : ""}sessions in the week of ${rangeTitle.format(was)}. ` +
              `Showing the week of the next one: ${first.title}, ${when(first.starts_at)}.`,
          );
        }
      }
    } catch (err) {
      error.show(err);
      return;
    }
    week = start;
    remembered.week = start;
    const last = addDays(start, 6);
    range.textContent = `Week of ${rangeTitle.format(start)} – ${rangeTitle.format(last)}`;
    const today = dayKey(new Date());
    const byDay = new Map();
    for (const s of sessions) {
      const k = dayKey(new Date(s.starts_at));
      if (!byDay.has(k)) byDay.set(k, []);
      byDay.get(k).push(s);
    }
    fill(
      grid,
      Array.from({ length: 7 }, (_, i) => {
        const d = addDays(start, i);
        const items = byDay.get(dayKey(d)) || [];
        const id = `day-${i}`;
        return h(
          "section",
          { class: `day${items.length ? "" : " empty"}${dayKey(d) === today ? " today" : ""}`, "aria-labelledby": id },
          h("h2", { id }, columnTitle.format(d), dayKey(d) === today ? h("span", { class: "sr-only" }, " (today)") : null),
          items.length ? items.map(slot) : h("p", { class: "muted" }, "No sessions"),
        );
      }),
    );
    if (!sessions.length) {
      grid.append(h("p", { class: "muted week-empty" }, "No sessions this week."));
    }
  }

  async function publish(s) {
    if (!confirm(`Publish the agenda of ${s.title} on ${when(s.starts_at)}? Invitations are emailed to the chair, the referrers and the specialty's consultants.`)) return;
    try {
      await api(`/api/sessions/${s.id}/publish`, { method: "POST" });
      say(`Agenda published: ${s.title}, ${when(s.starts_at)}. Invitations are on their way.`);
    } catch (err) {
      error.show(err);
    }
    await show(week);
  }

  async function cancel(s) {
    if (!confirm(`Cancel ${s.title} on ${when(s.starts_at)}? Its cases move to the next session of the series with room, or are flagged for rebooking, and every referrer is told.`)) return;
    try {
      const report = await api(`/api/sessions/${s.id}/cancel`, { method: "POST" });
      const moved = report.moved?.length || 0;
      const flagged = report.needs_rebooking?.length || 0;
      say(
        `Cancelled ${s.title}, ${when(s.starts_at)}. ` +
          `${moved} case${moved === 1 ? "" : "s"} moved to a later session; ` +
          `${flagged} need${flagged === 1 ? "s" : ""} rebooking.`,
      );
    } catch (err) {
      error.show(err);
    }
    await show(week);
  }

  prev.addEventListener("click", () => (say(null), show(addDays(week, -7))));
  next.addEventListener("click", () => (say(null), show(addDays(week, 7))));
  thisWeek.addEventListener("click", () => (say(null), show(mondayOf(new Date()))));
  nextSession.addEventListener("click", async () => {
    say(null);
    try {
      const from = new Date(Math.max(Date.now(), addDays(week, 7).getTime()));
      const first = await firstAfter(from);
      if (!first) {
        say("There are no later sessions.");
        return;
      }
      await show(mondayOf(new Date(first.starts_at)));
      say(`Next session: ${first.title}, ${when(first.starts_at)}.`);
    } catch (err) {
      error.show(err);
    }
  });
  filter.addEventListener("change", () => {
    remembered.specialty = filter.value;
    say(null);
    show(week, { jumpIfEmpty: true });
  });

  await show(week, { jumpIfEmpty: true });
}

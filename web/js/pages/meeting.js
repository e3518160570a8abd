// The meeting room: the live agenda (current case highlighted, a timer against its
// allotted minutes), the cases listed, not discussed (a standard plan each, confirmed by
// the chair in one action), who is here (muted, hand up, presenting), voice and the
// shared screen or the shared image viewer (the presenter drives it, everyone follows and
// may look around), and for the chair the controls that move the meeting and the outcome form,
// who waits in the lobby (admit or deny) and the session's invitations (invite, withdraw).
// A guest waits in the lobby until the chair lets them in.
// The state is folded from the live channel's snapshot and events, as the server does.
import { api } from "../api.js";
import { LiveChannel } from "../live.js";
import { Media } from "../rtc.js";
import { outcomeForm } from "../outcome-form.js";
import { clock, errorBox, explain, field, fill, h, humanise, sentenceCase, time, when } from "../ui.js";
import { busy, select } from "../forms.js";
import { createViewer, blankView, IMAGE_TYPES } from "../viewer.js";
import { ukWhen } from "../days.js";

const LIVE_ERRORS = {
  offline: "You are not connected just now: try again once the meeting has reconnected.",
  not_presenter: "Only the presenter the chair has granted may share a screen.",
  forbidden: "You do not have permission to do that.",
  invalid_sdp: "The browser's media description was refused; try again.",
  media_unavailable: "Voice and screen share are unavailable on the server just now.",
  meeting_not_open: "The meeting has not been opened yet.",
  not_a_participant: "You are no longer a participant in this meeting.",
  entry_denied: "The chair did not let you into this meeting. If you think this is a mistake, contact the chair or a coordinator.",
  account_deactivated: "Your account has been deactivated, so you have left the meeting. Ask a coordinator if you think this is wrong.",
  in_lobby: "You are still waiting in the lobby: the chair has not let you in yet.",
  not_waiting: "That person is no longer waiting in the lobby.",
  agenda_finished: "There are no more cases waiting.",
  stale_seq: "The agenda changed while you were acting; it has been refreshed.",
  no_current_case: "Start a case first: the viewer shows images of the case under discussion.",
  unknown_attachment: "That image is not one of the current case's attachments.",
  unavailable: "That could not be saved just now: try again in a moment.",
  not_an_image: "Only PNG, JPEG and DICOM images open in the viewer.",
  invalid_view: "The viewer could not show that view.",
  // The scheduled start on the UK clock, and the lead time read from the server's words.
  too_early: (err, { session, you }) => {
    const lead = openingLead(err.message);
    const start = session?.starts_at ? `${ukWhen(session.starts_at)} (UK time)` : "later";
    return (
      `It is too early to open this meeting: it is scheduled for ${start} and can be opened from ` +
      `${lead ? `${lead} before its start` : "shortly before its start"}. ` +
      (you?.role === "coordinator"
        ? "To hold it sooner, move the session to an earlier time on the schedule page."
        : "To hold it sooner, ask a coordinator to move the session to an earlier time.")
    );
  },
};

/**
 * How long before its start a meeting may be opened, in words ("30 minutes"), read from
 * the server's too_early message ("…scheduled for 2026-12-10 12:30 and may be opened from
 * 2026-12-10 12:00 (UTC)…"), or null when the message does not say.
 */
export function openingLead(message) {
  const m = /scheduled for ([0-9]{4}-[0-9]{2}-[0-9]{2}) ([0-9]{2}:[0-9]{2}) and may be opened from ([0-9]{4}-[0-9]{2}-[0-9]{2}) ([0-9]{2}:[0-9]{2})/.exec(message || "");
  if (!m) return null;
  const minutes = (Date.parse(`${m[1]}T${m[2]}:00Z`) - Date.parse(`${m[3]}T${m[4]}:00Z`)) / 60000;
  if (!Number.isFinite(minutes) || minutes <= 0) return null;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  const part = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  return [hours ? part(hours, "hour") : null, rest ? part(rest, "minute") : null].filter(Boolean).join(" ");
}

/** Invitation refusals in words; `who` is the person's name, `kind` what they were invited as. */
export function invitationRefusal(err, who, kind) {
  switch (err?.code) {
    case "already_invited":
      return `${who} is already invited to this session.`;
    case "not_a_teaching_session":
      return "Trainees can be invited only to teaching sessions, and this is not one.";
    case "not_a_guest":
      return `${who} belongs to this session's specialty, so is not a guest: invite them as a learner (practitioners) or, as a consultant of the specialty, they may already join.`;
    case "invalid_invitee":
      return kind === "learner"
        ? `${who} cannot be invited as a learner: learners are practitioners.`
        : kind === "trainee"
          ? `${who} cannot be invited as a trainee: only trainees are.`
          : `${who} cannot be invited as a guest: guests are consultants or practitioners of another specialty.`;
    case "unknown_user":
      return `${who} no longer has an active account.`;
    case "invalid_state":
      return "Invitations can no longer change: this session is closed or cancelled.";
    case "not_found":
      return `${who} is no longer invited (someone withdrew the invitation meanwhile).`;
    default:
      return explain(err);
  }
}

export const INVITATION_KINDS = {
  learner: "Learner (practitioner)",
  guest: "Guest (other specialty)",
  trainee: "Trainee (de-identified)",
};

/** A live refusal in words; some depend on the meeting's state (its session, `you`). */
const liveError = (err, state) => {
  const known = LIVE_ERRORS[err.code];
  return (typeof known === "function" ? known(err, state) : known) || err.message || "That did not work.";
};

/** A readable title for an agenda entry: identified for clinicians, a label for trainees. */
export function caseTitle(c, index) {
  if (c.patient) {
    const p = c.patient;
    const nhs = p.nhs_number.replace(/^(\d{3})(\d{3})(\d{4})$/, "$1 $2 $3");
    return `${p.given_name} ${p.family_name} · NHS ${nhs}`;
  }
  return c.label || `Case ${index + 1}`;
}

/**
 * The agenda line for an entry: numbered once. A de-identified label already carries its
 * number ("Case 1 · F · 60–69 · neck"), so only identified entries get their position.
 */
export function agendaTitle(c, index) {
  const title = caseTitle(c, index);
  return /^Case \d+\b/.test(title) ? title : `${index + 1}. ${title}`;
}

/** Cases the chair can still start: booked, not yet discussed (listed cases are not). */
const isWaiting = (c) => c.state === "booked";

export async function render(main, { user, params: [sessionId] }) {
  const state = {
    session: null, agenda: [], current: null, since: null, participants: new Map(),
    presenter: null, hands: [], requests: [], quorum: null, you: null, outcomes: new Map(),
    connected: false, fatal: null, selected: null,
    // Cases seen listed (not discussed) in this page's life: they stay in their own
    // section once confirmed, for trainees too (whose views carry no standard plan).
    listed: new Set(), plans: new Map(),
    // Guests waiting for the chair (user id -> {user_id, name, role, organisation, since}),
    // and whether we ourselves wait in the lobby (a guest not yet let in).
    lobby: new Map(), waiting: false,
    // The shared viewer's view (null: closed), my own view when I drive it or look
    // around (null: following), and the current case's images for whoever drives.
    view: null, local: null, images: { caseId: null, list: [] },
  };
  const screens = new Map(); // publisher user id -> MediaStream
  const audios = new Map();
  let media = null;

  const status = document.getElementById("status");
  const announce = (text) => {
    status.textContent = text;
  };
  const error = h("p", { id: "meeting-error", class: "error", role: "alert", hidden: true });
  const showError = (text) => {
    error.textContent = text || "";
    error.hidden = !text;
  };

  const banner = h("div", { id: "offline-banner", class: "banner", role: "alert", hidden: true },
    "Connection lost: the agenda may be out of date. Reconnecting…");
  const savingBanner = h("div", { id: "saving-banner", class: "banner", role: "alert", hidden: true },
    "Changes cannot be saved just now: the agenda stays as it is until they can. Try again in a moment.");
  const traineeWarning = h("p", { id: "trainee-warning", class: "warning", hidden: true },
    "Trainees are present: do not show patient identifiers on screen.");
  const heading = h("h1", {}, "Meeting room");
  const facts = h("p", { class: "muted", id: "meeting-facts" });
  const agendaList = h("ol", { id: "agenda", class: "agenda", "aria-label": "Agenda" });
  const listedList = h("ul", { id: "listed", class: "agenda listed", "aria-labelledby": "listed-title" });
  const listedBar = h("div", { class: "actions", id: "listed-controls" });
  const listedSection = h("div", { id: "listed-section", class: "listed-section", hidden: true },
    h("h3", { id: "listed-title" }, "Listed, not discussed"),
    h("p", { class: "hint" }, "These follow a standard plan: the chair confirms their outcomes together, without discussion."),
    listedList, listedBar);
  const chairBar = h("div", { class: "actions", id: "chair-controls" });
  const timer = h("p", { id: "timer", class: "timer", "aria-live": "off" });
  const currentTitle = h("h2", { id: "current-case" }, "No case under discussion");
  const stage = h("div", { class: "stage", id: "stage" });
  const controls = h("div", { class: "actions", id: "my-controls" });
  const peopleList = h("ul", { id: "participants", class: "people", "aria-label": "Participants" });
  const quorumLine = h("p", { id: "quorum", class: "muted" });
  const outcomePanel = h("section", { id: "outcome-panel", hidden: true, "aria-labelledby": "outcome-title" });
  const audioBox = h("div", { hidden: true });
  const lobbyWait = h("section", { id: "lobby-wait", class: "card notice", hidden: true, "aria-labelledby": "lobby-wait-title" },
    h("h2", { id: "lobby-wait-title", tabindex: "-1" }, "Waiting for the chair to let you in"),
    h("p", {}, "You are invited to this meeting as a guest. The chair has been told you are here and will let you in; the agenda appears once they do."),
    h("p", { class: "muted" }, "Keep this page open. You are not yet in the meeting: no one can hear you."));
  const lobbyList = h("ul", { id: "lobby", class: "people", "aria-labelledby": "lobby-title" });
  const lobbyPanel = h("div", { id: "lobby-panel", class: "lobby-panel", hidden: true },
    h("h3", { id: "lobby-title" }, "Waiting in the lobby"), lobbyList);
  const invitePanel = h("section", { id: "invitations-panel", class: "card invitations", hidden: true, "aria-labelledby": "invitations-title" });
  const video = h("video", { id: "screen-video", autoplay: true, playsInline: true, muted: true, "aria-label": "Shared screen" });

  fill(
    main,
    banner,
    savingBanner,
    heading,
    facts,
    traineeWarning,
    error,
    lobbyWait,
    h(
      "div",
      { class: "room", id: "room" },
      h("section", { class: "agenda-panel", "aria-labelledby": "agenda-title" },
        h("h2", { id: "agenda-title" }, "Agenda"),
        h("p", { class: "hint", id: "reorder-hint", hidden: true }, "Drag a case, or focus it and press Alt+↑ / Alt+↓, to reorder."),
        agendaList,
        listedSection),
      h("div", { class: "stage-panel" },
        h("section", { "aria-labelledby": "current-case" }, currentTitle, timer, stage, controls, chairBar),
        outcomePanel),
      h("section", { class: "people-panel", "aria-labelledby": "people-title" },
        h("h2", { id: "people-title" }, "Participants"), quorumLine, lobbyPanel, peopleList),
    ),
    invitePanel,
    audioBox,
  );

  const isChair = () => Boolean(state.you?.chair);
  // The chair and consultants record outcomes (coordinators run the meeting, not decide).
  // A guest (a consultant of another specialty) speaks but never drafts or signs.
  const mayRecord = () => Boolean(state.you && state.you.role !== "coordinator" &&
    (state.you.chair || (state.you.role === "consultant" && (user.specialties || []).includes(state.session?.specialty))));
  const live = () => state.session?.state === "live";
  const me = () => state.participants.get(user.id);
  // Live, nothing under discussion and nothing left to start: only closing remains.
  const agendaDone = () => live() && !state.current && !state.agenda.some(isWaiting);

  // One command at a time: buttons are disabled while one is out, so a double click
  // cannot skip a case.
  let acting = false;
  async function act(command, done) {
    if (acting) return;
    // The buttons are disabled while the command is out, which takes focus from the one
    // pressed: it is given back (or to what took its place) unless focus went elsewhere.
    const key = focusKey();
    showError(null);
    acting = true;
    renderControls();
    try {
      await channel.command(command);
      done?.();
    } catch (err) {
      if (err.code !== "closed") showError(liveError(err, state));
    } finally {
      acting = false;
      renderAll();
      if (!document.activeElement || document.activeElement === document.body) restoreFocus(key);
    }
  }

  // ---- the live state, folded from snapshot and events ----
  function applySnapshot(msg) {
    state.session = msg.session;
    state.view = msg.view || null;
    if (!state.view) state.local = null;
    state.agenda = msg.agenda;
    for (const c of msg.agenda) if (c.state === "listed" || c.standard_plan) state.listed.add(c.id);
    state.current = msg.current_case;
    state.since = msg.current_case_since ? Date.parse(msg.current_case_since) : null;
    state.participants = new Map(msg.participants.map((p) => [p.user_id, p]));
    state.presenter = msg.presenter;
    state.hands = msg.hands;
    state.requests = msg.present_requests;
    state.quorum = msg.quorum;
    state.you = msg.you;
    state.lobby = new Map((msg.lobby || []).map((l) => [l.user_id, l]));
    if (state.waiting) {
      state.waiting = false;
      announce("The chair let you in.");
    }
    loadPlans();
  }

  const caseById = (id) => state.agenda.find((c) => c.id === id);
  const setCaseState = (id, s) => {
    const c = caseById(id);
    if (c) c.state = s;
  };

  function applyEvent(e) {
    switch (e.kind) {
      case "meeting_opened":
        state.session.state = "live";
        announce("The meeting is open.");
        break;
      case "meeting_closed":
        state.view = state.local = null;
        state.session.state = "closed";
        state.hands = [];
        state.requests = [];
        state.presenter = null;
        state.current = null;
        announce("The meeting has closed.");
        break;
      case "case_started":
        state.view = state.local = null;
        state.current = e.case_id;
        state.selected = null;
        state.since = Date.parse(e.at);
        setCaseState(e.case_id, "in_discussion");
        announce(`Now discussing case ${state.agenda.findIndex((c) => c.id === e.case_id) + 1}.`);
        break;
      case "case_completed":
        setCaseState(e.case_id, "discussed");
        if (state.current === e.case_id) state.current = state.view = state.local = null;
        break;
      case "case_deferred":
        setCaseState(e.case_id, "deferred");
        if (state.current === e.case_id) state.current = state.view = state.local = null;
        announce(`Case ${state.agenda.findIndex((c) => c.id === e.case_id) + 1} was deferred.`);
        break;
      case "agenda_reordered": {
        const order = new Map(e.case_ids.map((id, i) => [id, i]));
        state.agenda.sort((a, b) => (order.get(a.id) ?? 1e9) - (order.get(b.id) ?? 1e9));
        break;
      }
      case "participant_joined":
        state.participants.set(e.user_id, { user_id: e.user_id, name: e.name, role: e.role, since: e.at, muted: true });
        break;
      case "participant_left":
        state.participants.delete(e.user_id);
        state.hands = state.hands.filter((u) => u !== e.user_id);
        state.requests = state.requests.filter((u) => u !== e.user_id);
        if (state.presenter === e.user_id) state.presenter = null;
        break;
      case "hand_raised":
        if (!state.hands.includes(e.user_id)) state.hands.push(e.user_id);
        if (isChair()) announce(`${state.participants.get(e.user_id)?.name || "Someone"} raised their hand.`);
        break;
      case "hand_lowered":
        state.hands = state.hands.filter((u) => u !== e.user_id);
        break;
      case "present_requested":
        if (!state.requests.includes(e.user_id)) state.requests.push(e.user_id);
        break;
      case "presenter_granted":
        state.presenter = e.user_id;
        state.requests = state.requests.filter((u) => u !== e.user_id);
        if (e.user_id === user.id) announce("You may now share your screen.");
        break;
      case "presenter_revoked":
        if (state.presenter === e.user_id) state.presenter = null;
        break;
      case "mute_changed": {
        const p = state.participants.get(e.user_id);
        if (p) p.muted = e.muted;
        if (e.user_id === user.id && e.muted) media?.setMicEnabled(false);
        break;
      }
      case "outcome_drafted":
        state.outcomes.set(e.case_id, { version: e.version, signed: false });
        break;
      // The listed cases' standard outcomes confirmed in one chair action.
      case "listed_confirmed":
        for (const id of e.case_ids || []) {
          setCaseState(id, "outcome_signed");
          state.outcomes.set(id, { version: 1, signed: true });
        }
        announce(`The standard outcomes of ${(e.case_ids || []).length} listed case${(e.case_ids || []).length === 1 ? "" : "s"} were confirmed.`);
        break;
      case "outcome_signed":
        state.outcomes.set(e.case_id, { version: e.version, signed: true });
        setCaseState(e.case_id, "outcome_signed");
        // A signed case is no longer under discussion (as the server counts it).
        if (state.current === e.case_id) {
          state.current = null;
          state.since = null;
        }
        break;
      case "lobby_waiting":
        state.lobby.set(e.user_id, { user_id: e.user_id, name: e.name, role: e.role, organisation: e.organisation, since: e.at });
        if (isChair()) announce(`${e.name} is waiting in the lobby.`);
        break;
      case "lobby_left":
      case "lobby_admitted":
      case "lobby_denied":
        state.lobby.delete(e.user_id);
        break;
      case "view_changed": {
        const { kind, at, actor, ...view } = e;
        state.view = view.attachment_id ? view : null;
        // Someone else drove: a driver's own view gives way to it; a follower looking
        // around keeps theirs until they snap back.
        if (!state.view || (actor !== user.id && drives())) state.local = null;
        break;
      }
      default:
        break;
    }
  }

  // ---- media ----
  function startMedia() {
    if (media || !live() || !channel.open) return;
    const mine = new Media({
      send: (m) => channel.sendRaw(m),
      iceServers: channel.iceServers,
      onTrack: (kind, owner, stream, old) => {
        const map = kind === "screen" ? screens : audios;
        if (stream) map.set(owner, stream);
        else if (!old || map.get(owner) === old) map.delete(owner);
        if (kind === "audio") renderAudio();
        renderStage();
      },
      onChange: () => {
        renderControls();
        renderStage();
      },
      onGiveUp: () => {
        if (media === mine) showError("Voice and screen share could not connect. Leave the meeting and join again.");
      },
    });
    media = mine;
    mine.start(me()?.muted ?? true).catch((err) => showError(`Voice could not start: ${err.message}`));
  }

  function stopMedia() {
    media?.close();
    media = null;
    screens.clear();
    audios.clear();
    renderAudio();
  }

  function renderAudio() {
    fill(audioBox, [...audios].map(([owner, stream]) => {
      const el = h("audio", { autoplay: true, dataset: { user: owner } });
      el.srcObject = stream;
      return el;
    }));
  }

  // ---- rendering ----
  /** Elements kept across renders, by key: the buttons, and the rows that hold them. */
  const kept = new Map();
  /**
   * The element named `key`, made as h(tag, attrs) the first time (when `created` sets
   * it up, e.g. its listeners) and on later renders the same element with its attributes
   * updated; either way its children become `children` (see `fill`). A re-render so
   * changes the page around what is there instead of putting new elements in its place:
   * a click pressed before an event re-renders the page and released after it still
   * lands (a browser fires no click when press and release meet different elements), and
   * focus stays put.
   */
  function keep(key, tag, attrs, children, created) {
    const fresh = h(tag, attrs);
    let el = kept.get(key);
    if (el?.tagName === fresh.tagName) {
      for (const { name } of [...el.attributes]) if (!fresh.hasAttribute(name)) el.removeAttribute(name);
      for (const { name, value } of fresh.attributes) if (el.getAttribute(name) !== value) el.setAttribute(name, value);
    } else {
      el = fresh;
      kept.set(key, el);
      created?.(el);
    }
    return fill(el, children);
  }

  /**
   * A button that acts on the meeting, kept by its `key` (or its id): disabled while
   * disconnected or while a command is out. A click runs the action the button showed
   * when it was pressed: a re-render between pressing and letting go (the chair muting
   * you as you press "Mute") does not turn it into another.
   */
  function btn(attrs, ...children) {
    const { key, onclick, ...rest } = attrs;
    const name = key || rest.id;
    const el = keep(name, "button", {
      type: "button", ...rest, dataset: { key: name },
      disabled: Boolean(rest.disabled) || !state.connected || acting,
    }, children, (b) => {
      const press = () => { b.pressed = b.act; };
      b.addEventListener("pointerdown", press);
      b.addEventListener("keydown", press);
      b.addEventListener("click", (e) => {
        const act = b.pressed || b.act;
        b.pressed = null;
        act?.(e);
      });
    });
    el.act = onclick;
    return el;
  }

  /** A stable key for the focused control, so a re-render can give focus back. */
  const focusKey = () => document.activeElement?.dataset?.key || null;
  /** Where focus goes when its control has gone: from the case button, once the agenda is
   * done, to closing the meeting (the one thing left). */
  const FOCUS_NEXT = { "next-case": "close-meeting" };
  function restoreFocus(key) {
    if (!key || document.activeElement?.dataset?.key === key) return;
    const find = (k) => main.querySelector(`[data-key="${CSS.escape(k)}"]`);
    (find(key) || (FOCUS_NEXT[key] && find(FOCUS_NEXT[key])))?.focus();
  }

  let lastQuorum = null;
  function renderAll() {
    lobbyWait.hidden = !state.waiting;
    main.querySelector("#room").hidden = state.waiting || (!state.session && Boolean(state.fatal));
    if (!state.session) return;
    const key = focusKey();
    const s = state.session;
    heading.textContent = s.title;
    fill(facts, `${sentenceCase(s.specialty)} · ${when(s.starts_at)} · `, h("span", { id: "meeting-state", class: `tag state-${s.state}` }, humanise(s.state)),
      s.teaching ? " · teaching session" : "");
    const trainees = [...state.participants.values()].some((p) => p.role === "trainee");
    traineeWarning.hidden = !(trainees && state.you?.role !== "trainee");
    renderAgenda();
    renderStage();
    renderControls();
    renderPeople();
    renderLobby();
    invitations.show();
    renderOutcome();
    tick();
    restoreFocus(key);
    const q = quorum();
    if (lastQuorum !== null && q !== lastQuorum) announce(q);
    lastQuorum = q;
  }

  /** The agenda row being dragged, if any. */
  let dragging = null;
  function renderAgenda() {
    const chair = isChair() && live();
    const discussed = discussedCases();
    main.querySelector("#reorder-hint").hidden = !(isChair() && discussed.length > 1);
    const focused = document.activeElement?.closest?.("li[data-case-id]")?.dataset.caseId;
    renderListed();
    fill(agendaList, discussed.map((c, i) => {
      const current = c.id === state.current;
      const outcome = state.outcomes.get(c.id);
      const waiting = isWaiting(c);
      // Set up once, when the row is first made: what its listeners read (the case's id,
      // the agenda as it stands when they run) does not change with the row's renders.
      const setUp = (li) => {
        li.addEventListener("keydown", (e) => {
          if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown") && e.target === li) {
            e.preventDefault();
            move(c.id, e.key === "ArrowUp" ? -1 : 1, true);
          }
        });
        li.addEventListener("dragstart", (e) => {
          e.dataTransfer.setData("text/plain", c.id);
          dragging = c.id;
          li.classList.add("dragging");
        });
        li.addEventListener("dragend", () => {
          dragging = null;
          li.classList.remove("dragging");
        });
        li.addEventListener("dragover", (e) => e.preventDefault());
        li.addEventListener("drop", (e) => {
          e.preventDefault();
          const moved = e.dataTransfer.getData("text/plain");
          if (moved && moved !== c.id) reorder(moved, c.id);
        });
      };
      return keep(`case-${c.id}`, "li", {
        // A render during a drag keeps the dragged row marked.
        class: [current ? "current" : "", dragging === c.id ? "dragging" : ""].join(" ").trim(),
        dataset: { caseId: c.id },
        tabindex: isChair() ? "0" : false,
        draggable: isChair() ? "true" : false,
        "aria-current": current ? "step" : false,
      }, [
        h("div", { class: "case-title" }, agendaTitle(c, i)),
        h("div", {}, h("span", { class: `tag state-${c.state}` }, humanise(c.state)), " ",
          c.urgency === "urgent" ? h("span", { class: "tag urgent" }, "urgent") : null, " ",
          h("span", { class: "muted" }, c.body_site || "")),
        c.clinical_question ? h("p", { class: "muted" }, c.clinical_question) : null,
        outcome ? h("p", { class: "muted" }, outcome.signed ? `Outcome signed (v${outcome.version})` : `Outcome drafted (v${outcome.version})`) : null,
        isChair() || mayRecord()
          ? keep(`tools-${c.id}`, "div", { class: "tools" }, [
            chair && waiting ? btn({ key: `start-${c.id}`, class: "small", onclick: () => act({ kind: "start_case", case_id: c.id }) }, "Start") : null,
            chair && (waiting || current) ? btn({ key: `defer-${c.id}`, class: "small secondary", onclick: () => act({ kind: "defer_case", case_id: c.id }) }, "Defer") : null,
            isChair() && discussed.length > 1 ? [
              btn({ key: `up-${c.id}`, class: "small secondary", "aria-label": `Move case ${i + 1} up`, disabled: i === 0, onclick: () => move(c.id, -1) }, "↑"),
              btn({ key: `down-${c.id}`, class: "small secondary", "aria-label": `Move case ${i + 1} down`, disabled: i === discussed.length - 1, onclick: () => move(c.id, 1) }, "↓"),
            ] : null,
            mayRecord() ? keep(`outcome-${c.id}`, "button", { type: "button", class: "small secondary", dataset: { key: `outcome-${c.id}` } }, ["Outcome"],
              (b) => b.addEventListener("click", () => selectCase(c.id))) : null,
          ])
          : null,
      ], setUp);
    }));
    if (focused) agendaList.querySelector(`li[data-case-id="${focused}"]`)?.focus();
  }

  /** The whole agenda's order for a reorder: the discussed cases as given, then the listed. */
  const withListed = (ids) => [...ids, ...listedCases().map((c) => c.id)];

  function reorder(movedId, beforeId) {
    const ids = discussedCases().map((c) => c.id).filter((id) => id !== movedId);
    if (!ids.includes(beforeId)) return;
    ids.splice(ids.indexOf(beforeId), 0, movedId);
    act({ kind: "reorder", case_ids: withListed(ids) });
  }

  function move(id, delta, keepFocus) {
    const ids = discussedCases().map((c) => c.id);
    const from = ids.indexOf(id);
    const to = from + delta;
    if (to < 0 || to >= ids.length) return;
    ids.splice(from, 1);
    ids.splice(to, 0, id);
    act({ kind: "reorder", case_ids: withListed(ids) }, () => {
      announce(`Case moved to position ${to + 1}.`);
      if (keepFocus) agendaList.querySelector(`li[data-case-id="${id}"]`)?.focus();
    });
  }

  /** The agenda's two parts: the cases to discuss, and those listed, not discussed. */
  function listedCases() {
    return state.agenda.filter((c) => state.listed.has(c.id) || c.state === "listed");
  }
  function discussedCases() {
    return state.agenda.filter((c) => !(state.listed.has(c.id) || c.state === "listed"));
  }

  /** The specialty's standard plans, for the listed cases' plan titles (clinicians only). */
  let plansLoading = false;
  function loadPlans() {
    if (plansLoading || state.you?.role === "trainee" || !state.session?.specialty) return;
    plansLoading = true;
    api(`/api/specialties/${encodeURIComponent(state.session.specialty)}/triage`)
      .then((rules) => {
        for (const p of rules.standard_plans || []) state.plans.set(p.code, p);
        renderListed();
      })
      .catch(() => {});
  }

  function renderListed() {
    const listed = listedCases();
    listedSection.hidden = listed.length === 0;
    fill(listedList, listed.map((c) => {
      const outcome = state.outcomes.get(c.id);
      const confirmed = c.state !== "listed";
      const plan = c.standard_plan && (state.plans.get(c.standard_plan)?.title || c.standard_plan);
      return h("li", { dataset: { caseId: c.id } },
        h("div", { class: "case-title" }, caseTitle(c, state.agenda.indexOf(c))),
        h("div", {}, h("span", { class: `tag state-${c.state}` }, confirmed ? humanise(c.state) : "listed, not discussed"), " ",
          c.urgency === "urgent" ? h("span", { class: "tag urgent" }, "urgent") : null, " ",
          h("span", { class: "muted" }, c.body_site || "")),
        plan ? h("p", { class: "muted" }, "Standard plan: ", plan) : null,
        confirmed || outcome?.signed ? h("p", { class: "muted" }, "Standard outcome signed") : null);
    }));
    const waiting = listed.filter((c) => c.state === "listed");
    fill(listedBar,
      isChair() && live() && waiting.length
        ? btn({ id: "confirm-listed", onclick: () => confirmListed(waiting) }, `Confirm standard outcomes (${waiting.length})`)
        : null,
      !live() && waiting.length ? h("p", { class: "muted" }, "The chair confirms these once the meeting is open.") : null);
  }

  function confirmListed(waiting) {
    const n = waiting.length;
    if (!confirm(`Sign the standard outcome of ${n} listed case${n === 1 ? "" : "s"}? Each is signed with the standard plan chosen at triage.`)) return;
    act({ kind: "confirm_listed", case_ids: waiting.map((c) => c.id) }, () => {
      announce(`Standard outcomes confirmed for ${n} listed case${n === 1 ? "" : "s"}.`);
    });
  }

  // ---- the shared image viewer ----
  // The presenter drives; the chair too while no one presents (the server lets the chair
  // drive at any time, but the page leaves the presenter's view alone).
  const drives = () => state.presenter === user.id || (isChair() && !state.presenter);
  const viewer = createViewer({
    label: "Shared image viewer",
    onChange: (view) => {
      state.local = view;
      if (drives()) shareView(view);
      renderViewerBar();
    },
  });
  // The driver's changes go out at most ten times a second, the latest winning (the
  // server paces them too; a replaced one is answered view_superseded).
  let shareTimer = null;
  let lastShared = 0;
  let toShare = null;
  function shareView(view) {
    toShare = view;
    if (shareTimer) return;
    shareTimer = setTimeout(() => {
      shareTimer = null;
      lastShared = Date.now();
      const v = toShare;
      toShare = null;
      channel.command({ kind: "view", ...v }).catch((err) => {
        if (err.code !== "view_superseded" && err.code !== "closed") showError(liveError(err, state));
      });
    }, Math.max(0, lastShared + 100 - Date.now()));
  }
  function openImage(id) {
    const view = blankView(id);
    state.local = view;
    shareView(view);
    renderStage();
  }
  function handBack() {
    state.local = null;
    toShare = null;
    act({ kind: "view", attachment_id: null });
  }
  // The current case's images, for whoever drives the viewer.
  async function loadImages() {
    const caseId = state.current;
    if (!drives() || !caseId || state.images.caseId === caseId || state.you?.role === "trainee") return;
    state.images = { caseId, list: [] };
    try {
      const all = await api(`/api/cases/${caseId}/attachments`);
      if (state.images.caseId === caseId) state.images.list = all.filter((a) => IMAGE_TYPES.includes(a.content_type));
    } catch {
      state.images = { caseId: null, list: [] };
    }
    renderStage();
  }
  const viewerBar = h("div", { class: "actions", id: "viewer-bar" });
  const viewerNote = h("p", { class: "warning", id: "viewer-trainee-note", hidden: true }, "Trainees in this meeting do not see images.");
  function renderViewerBar() {
    const presenter = state.presenter && state.participants.get(state.presenter);
    const lookingAround = state.local && !drives();
    fill(viewerBar,
      drives()
        ? [h("span", { class: "muted" }, "You are showing this image to everyone."),
          btn({ id: "viewer-close", class: "secondary", onclick: handBack }, "Back to screen share")]
        : lookingAround
          ? [h("span", { class: "muted", id: "viewer-looking" }, "You are looking around on your own."),
            btn({ id: "viewer-snap-back", onclick: () => { state.local = null; renderStage(); } }, "Back to the presenter's view")]
          : h("span", { class: "muted", id: "viewer-following" }, `Following ${presenter?.name || "the presenter"}'s view.`),
    );
  }

  function renderStage() {
    const current = caseById(state.current);
    currentTitle.textContent = current
      ? `Now discussing: ${caseTitle(current, state.agenda.indexOf(current))}`
      : agendaDone() ? "Agenda done"
        : live() ? "No case under discussion" : state.session?.state === "closed" ? "The meeting has closed" : "The meeting has not started";
    if (state.view) {
      video.srcObject = null;
      if (state.you?.role === "trainee") {
        return fill(stage, h("div", { class: "placeholder", id: "viewer-withheld" },
          "An image is being shown. Images are shown to clinicians only: they may identify the patient."));
      }
      viewer.show(state.local || state.view);
      renderViewerBar();
      const trainees = [...state.participants.values()].some((p) => p.role === "trainee");
      viewerNote.hidden = !(drives() && trainees);
      // Kept in place (not re-inserted), so no one's focus or typing in it is lost.
      if (viewer.el.parentNode !== stage) fill(stage, viewer.el, viewerBar, viewerNote);
      return;
    }
    viewer.show(null);
    const presenter = state.presenter && state.participants.get(state.presenter);
    const own = state.presenter === user.id && media?.screenPreview;
    const stream = own || (state.presenter && state.presenter !== user.id ? screens.get(state.presenter) : null);
    loadImages();
    const images = drives() && live() && state.current && state.images.caseId === state.current && state.images.list.length
      ? h("div", { class: "actions", id: "viewer-open" }, h("span", { class: "muted" }, "Show an image of this case to everyone: "),
        state.images.list.map((a) => btn({ class: "secondary small", key: `view-${a.id}`, "data-attachment-id": a.id, onclick: () => openImage(a.id) }, `Show ${a.filename}`)))
      : null;
    if (stream) {
      if (video.srcObject !== stream) video.srcObject = stream;
      fill(stage, video, h("p", { class: "muted" }, own ? "You are sharing your screen (preview)." : `${presenter?.name || "The presenter"} is sharing their screen.`), images);
    } else {
      video.srcObject = null;
      let text = "No one is sharing their screen.";
      if (state.presenter === user.id) text = media?.sharing ? "You are sharing your screen." : "You may share your screen.";
      else if (presenter) text = `${presenter.name} may share their screen.`;
      fill(stage, h("div", { class: "placeholder" }, text), images);
    }
  }

  function renderControls() {
    const p = me();
    const inRoom = Boolean(p) && live() && state.connected;
    const trainee = state.you?.role === "trainee";
    const handUp = state.hands.includes(user.id);
    const presenting = state.presenter === user.id;
    const muted = p ? p.muted : true;
    fill(controls,
      inRoom ? btn({
        id: "mic-toggle", "aria-pressed": String(!muted), disabled: Boolean(media?.micError),
        onclick: () => toggleMute(!muted),
      }, media?.micError ? media.micError : muted ? "Unmute microphone" : "Mute microphone") : null,
      inRoom ? btn({ id: "hand-toggle", class: "secondary", "aria-pressed": String(handUp), onclick: () => act({ kind: handUp ? "lower_hand" : "raise_hand" }) },
        handUp ? "Lower hand" : "Raise hand") : null,
      inRoom && presenting ? btn({ id: "share-toggle", onclick: () => toggleShare() },
        media?.sharing ? "Stop sharing" : "Share screen") : null,
      inRoom && presenting ? btn({ key: "stop-presenting", class: "secondary", onclick: () => { media?.stopSharing(); act({ kind: "revoke_present" }); } }, "Stop presenting") : null,
      // The chair needs no one's leave to present: they take the presenter's place.
      inRoom && !presenting && isChair() ? btn({ id: "present-self", class: "secondary", onclick: () => act({ kind: "grant_present", user_id: user.id }) }, "Present my screen") : null,
      inRoom && !presenting && !trainee && !isChair() ? btn({ id: "request-present", class: "secondary", disabled: state.requests.includes(user.id), onclick: () => act({ kind: "request_present" }) },
        state.requests.includes(user.id) ? "Asked to present" : "Ask to present") : null,
      !state.connected ? h("span", { class: "muted" }, "Connecting…") : null,
    );
    if (!isChair()) return fill(chairBar);
    const s = state.session?.state;
    const done = agendaDone();
    const more = state.agenda.some(isWaiting);
    const begun = discussedCases().some((c) => !isWaiting(c));
    const listedWaiting = state.agenda.filter((c) => c.state === "listed").length;
    const next = state.current ? (more ? "Next case" : "Finish this case") : begun ? "Start next case" : "Start first case";
    fill(chairBar,
      s === "scheduled" || s === "published" ? btn({ id: "open-meeting", onclick: () => act({ kind: "open_meeting" }) }, "Open meeting") : null,
      s === "live" && !done ? btn({ id: "next-case", onclick: () => act({ kind: "next_case" }) }, next) : null,
      s === "live" && state.current ? btn({ class: "secondary", id: "defer-current", onclick: () => act({ kind: "defer_case", case_id: state.current }) }, "Defer current case") : null,
      done ? h("p", { id: "agenda-done", class: "notice" }, "Agenda done: every case has been discussed, deferred or withdrawn. ",
        listedWaiting
          ? `${listedWaiting} listed case${listedWaiting === 1 ? " still awaits" : "s still await"} the confirmation of ${listedWaiting === 1 ? "its" : "their"} standard outcome (under the agenda). `
          : "",
        "Close the meeting when everyone is ready.") : null,
      // Once the agenda is done, closing is the one thing left: the primary action, and
      // where focus goes from the case button that has gone (FOCUS_NEXT).
      s === "live" ? btn({ class: done ? undefined : "danger", id: "close-meeting", onclick: () => confirm("Close the meeting for everyone?") && act({ kind: "close_meeting" }) }, "Close meeting") : null,
    );
  }

  async function toggleMute(mute) {
    if (!mute) media?.setMicEnabled(true);
    await act({ kind: "set_muted", muted: mute }, () => {
      if (mute) media?.setMicEnabled(false);
    });
  }

  async function toggleShare() {
    if (!media) return;
    showError(null);
    if (media.sharing) {
      media.stopSharing();
      renderStage();
      return;
    }
    try {
      await media.share();
      renderStage();
    } catch (err) {
      showError(err.name === "NotAllowedError" ? "Screen sharing was cancelled or blocked." : `Screen sharing failed: ${err.message}`);
    }
  }

  /** Quoracy as the server counts it: the chair plus enough other clinicians present. */
  function quorum() {
    if (!state.quorum) return "";
    const people = [...state.participants.values()];
    const chairPresent = people.some((p) => p.user_id === state.session.chair_id);
    const others = people.filter((p) => p.user_id !== state.session.chair_id && (p.role === "consultant" || p.role === "practitioner")).length;
    const needed = state.quorum.required_others;
    if (chairPresent && others >= needed) return "Quorate";
    return `Not quorate: ${chairPresent ? "" : "the chair is not here; "}${others} of ${needed} other clinicians present`;
  }

  /** Who waits in the lobby, for the chair: name, role and organisation, admit or deny. */
  function renderLobby() {
    const waiting = isChair() ? [...state.lobby.values()] : [];
    lobbyPanel.hidden = waiting.length === 0;
    fill(lobbyList, waiting.map((l) => keep(`waiting-${l.user_id}`, "li", { dataset: { userId: l.user_id } }, [
      h("span", { class: "name" }, l.name, " ", h("span", { class: "muted" }, humanise(l.role)),
        h("br"), h("span", { class: "muted organisation" }, l.organisation || "No organisation given")),
      btn({ key: `admit-${l.user_id}`, class: "small", "aria-label": `Admit ${l.name}`, onclick: () => act({ kind: "admit", user_id: l.user_id }, () => announce(`${l.name} was let in.`)) }, "Admit"),
      btn({ key: `deny-${l.user_id}`, class: "small danger", "aria-label": `Deny ${l.name} entry`, onclick: () => confirm(`Turn ${l.name} away for the rest of this meeting?`) && act({ kind: "deny", user_id: l.user_id }, () => announce(`${l.name} was turned away.`)) }, "Deny"),
    ])));
  }

  // ---- invitations (the chair and coordinators) ----
  const invitations = invitationsPanel();
  function invitationsPanel() {
    let loaded = false;
    let people = [];
    let list = [];
    const box = errorBox("invite-error");
    const person = select({ id: "invite-person", name: "user_id" }, []);
    const kind = select({ id: "invite-kind", name: "kind" }, []);
    const submit = h("button", { type: "submit", id: "invite-submit" }, "Invite");
    const listEl = h("ul", { id: "invitations", class: "people", "aria-labelledby": "invitations-list-title" });
    const empty = h("p", { class: "muted", id: "no-invitations" }, "No one is invited yet.");
    const hint = h("p", { class: "hint", id: "invite-hint" });
    const form = h("form", { id: "invite-form", novalidate: true, "aria-labelledby": "invite-form-title" },
      h("h3", { id: "invite-form-title" }, "Invite someone"),
      hint,
      h("div", { class: "row" }, field("Person", person), field("Invite as", kind)),
      box, submit);
    fill(invitePanel,
      h("h2", { id: "invitations-title" }, "Invitations"),
      h("p", { class: "hint" }, "Invite practitioners without a case to learn, trainees to teaching sessions, and clinicians of other services as guests (they see the agenda identified, speak and may present, but do not decide or sign). Guests wait in the lobby until you let them in. Published sessions send the calendar invitation at once."),
      h("div", { class: "two" }, form,
        h("div", {}, h("h3", { id: "invitations-list-title" }, "Invited"), empty, listEl)));

    const kindsFor = () => Object.entries(INVITATION_KINDS).filter(([k]) => k !== "trainee" || state.session?.teaching);
    /** The kind a person is most likely invited as. */
    const suggested = (p) => {
      if (!p) return "learner";
      if (p.role === "trainee") return "trainee";
      if (p.role === "consultant" || !(p.specialties || []).includes(state.session?.specialty)) return "guest";
      return "learner";
    };
    const nameOf = (id) => people.find((p) => p.id === id)?.name || list.find((i) => i.user_id === id)?.name || "This person";

    function showForm() {
      const invited = new Set(list.map((i) => i.user_id));
      const was = person.value;
      const choosable = people.filter((p) => p.id !== state.session?.chair_id && p.role !== "coordinator" && !invited.has(p.id) &&
        (p.role !== "trainee" || state.session?.teaching));
      fill(person, h("option", { value: "" }, choosable.length ? "Choose…" : "No one else to invite"),
        choosable.map((p) => h("option", { value: p.id, selected: p.id === was },
          `${p.name} · ${humanise(p.role)}${p.specialties?.length ? ` · ${p.specialties.map(humanise).join(", ")}` : ""}`)));
      const k = kind.value;
      fill(kind, kindsFor().map(([value, label]) => h("option", { value, selected: value === k }, label)));
      hint.textContent = user.role === "coordinator"
        ? "Everyone with an active account is listed."
        : "Listed: people who share a specialty with you, and trainees. To invite a clinician of another service who is not listed, ask a coordinator.";
    }

    function showList() {
      empty.hidden = list.length > 0;
      fill(listEl, list.map((i) => h("li", { dataset: { userId: i.user_id } },
        h("span", { class: "name" }, i.name, " ", h("span", { class: "muted" }, humanise(i.role)),
          i.organisation ? [h("br"), h("span", { class: "muted" }, i.organisation)] : null),
        h("span", { class: `tag kind-${i.kind}` }, i.kind),
        h("span", { class: "muted" }, "invited ", time(i.invited_at)),
        h("button", { type: "button", class: "small secondary", dataset: { key: `withdraw-${i.user_id}` }, "aria-label": `Withdraw the invitation of ${i.name}`, onclick: (e) => withdraw(i, e.currentTarget) }, "Withdraw"))));
    }

    async function load() {
      const id = state.session.id;
      const [p, l] = await Promise.all([
        api("/api/people").catch(() => []),
        api(`/api/sessions/${id}/invitations`),
      ]);
      people = p;
      list = l;
      showForm();
      showList();
    }

    person.addEventListener("change", () => {
      kind.value = suggested(people.find((p) => p.id === person.value));
      box.show(null);
    });

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      box.show(null);
      if (!person.value) {
        box.show("Choose the person to invite.");
        person.focus();
        return;
      }
      const who = nameOf(person.value);
      const as = kind.value;
      try {
        const made = await busy(submit, "Inviting…", () =>
          api(`/api/sessions/${state.session.id}/invitations`, { method: "POST", body: { user_id: person.value, kind: as } }));
        list = [...list.filter((i) => i.user_id !== made.user_id), made];
        person.value = "";
        showForm();
        showList();
        announce(`${made.name} is invited as a ${made.kind}.`);
        person.focus();
      } catch (err) {
        box.show(invitationRefusal(err, who, as));
      }
    });

    async function withdraw(i, button) {
      box.show(null);
      if (!confirm(`Withdraw the invitation of ${i.name}? They can no longer join this meeting.`)) return;
      try {
        await busy(button, "Withdrawing…", () =>
          api(`/api/sessions/${state.session.id}/invitations/${i.user_id}`, { method: "DELETE" }));
      } catch (err) {
        if (err.code !== "not_found") return box.show(invitationRefusal(err, i.name, i.kind));
      }
      list = list.filter((x) => x.user_id !== i.user_id);
      showForm();
      showList();
      announce(`The invitation of ${i.name} was withdrawn.`);
      (listEl.querySelector("button") || person).focus();
    }

    return {
      /** Shows the panel to the chair and coordinators (loading it once). */
      show() {
        const may = isChair() && state.session && !["closed", "cancelled"].includes(state.session.state);
        invitePanel.hidden = !may;
        if (!may || loaded) return;
        loaded = true;
        load().catch((err) => {
          loaded = false;
          box.show(err);
        });
      },
    };
  }

  function renderPeople() {
    quorumLine.textContent = quorum();
    const chair = isChair() && live();
    fill(peopleList, [...state.participants.values()].map((p) => {
      const hand = state.hands.includes(p.user_id);
      const presenting = state.presenter === p.user_id;
      const asked = state.requests.includes(p.user_id);
      return keep(`person-${p.user_id}`, "li", { dataset: { userId: p.user_id } }, [
        h("span", { class: "name" }, p.name, p.user_id === user.id ? " (you)" : "", " ", h("span", { class: "muted" }, humanise(p.role))),
        h("span", { class: p.muted ? "icon" : "icon live-mic" }, p.muted ? "muted" : "mic on"),
        hand ? h("span", { class: "icon hand" }, "hand up") : null,
        presenting ? h("span", { class: "icon presenting" }, "presenting") : null,
        asked ? h("span", { class: "icon" }, "asks to present") : null,
        chair && !presenting && p.role !== "trainee" && p.user_id !== user.id ? btn({ key: `present-${p.user_id}`, class: "small secondary", "aria-label": `Let ${p.name} present`, onclick: () => act({ kind: "grant_present", user_id: p.user_id }) }, "Let present") : null,
        chair && presenting ? btn({ key: `stop-${p.user_id}`, class: "small secondary", "aria-label": `Stop ${p.name} presenting`, onclick: () => act({ kind: "revoke_present" }) }, "Stop presenting") : null,
        chair && hand && p.user_id !== user.id ? btn({ key: `lower-${p.user_id}`, class: "small secondary", "aria-label": `Lower ${p.name}'s hand`, onclick: () => act({ kind: "lower_hand", user_id: p.user_id }) }, "Lower hand") : null,
        chair && !p.muted && p.user_id !== user.id ? btn({ key: `mute-${p.user_id}`, class: "small secondary", "aria-label": `Mute ${p.name}`, onclick: () => act({ kind: "set_muted", user_id: p.user_id, muted: true }) }, "Mute") : null,
      ]);
    }));
  }

  // ---- the outcome form (chair and consultants) ----
  let form = null;
  const forms = new Map();
  function selectCase(id) {
    state.selected = id;
    renderOutcome(true);
  }

  function renderOutcome(focus) {
    // The chosen case, else the one under discussion, else the last one shown (a case just
    // signed is no longer under discussion, but its signed form stays in view).
    const id = state.selected || state.current || form?.caseId;
    const c = id && caseById(id);
    if (!mayRecord() || !c) {
      outcomePanel.hidden = true;
      return;
    }
    outcomePanel.hidden = false;
    if (form && form.caseId === id) {
      form.refresh(state.outcomes.get(id));
      return;
    }
    // One form per case for the page's life: moving to the next case and back keeps
    // whatever was typed and not yet saved.
    form = forms.get(id) || outcomeForm({ caseId: id, title: caseTitle(c, state.agenda.indexOf(c)), session: state.session, user });
    forms.set(id, form);
    form.refresh(state.outcomes.get(id));
    fill(outcomePanel, form.element);
    if (focus) form.element.querySelector("h2")?.focus();
  }

  // ---- the timer ----
  function tick() {
    const c = caseById(state.current);
    if (!c || !state.since || !live()) {
      timer.textContent = "";
      timer.classList.remove("over");
      return;
    }
    const allotted = (state.session.minutes_per_case || 10) * 60;
    const elapsed = Math.max(0, Math.floor((Date.now() - state.since) / 1000));
    const mmss = (s) => `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
    timer.textContent = `${mmss(elapsed)} of ${mmss(allotted)} allotted (started ${clock(new Date(state.since).toISOString())})`;
    timer.classList.toggle("over", elapsed > allotted);
  }
  const ticker = setInterval(tick, 1000);

  // ---- the channel ----
  const channel = new LiveChannel(sessionId, {
    onStatus(s) {
      state.connected = s === "open";
      banner.hidden = s === "open" || s === "closed" || !state.session;
      if (s !== "open") stopMedia();
      renderAll();
      renderControls();
      if (s === "open" && state.session) startMedia();
    },
    onFatal(err) {
      state.fatal = err;
      banner.hidden = true;
      showError(explain(err));
      renderAll();
    },
    onMessage(msg) {
      if (msg.type === "lobby") {
        // A guest waiting for the chair: nothing of the meeting until they are let in.
        state.waiting = true;
        renderAll();
        announce("You are waiting in the lobby for the chair to let you in.");
        lobbyWait.querySelector("h2").focus();
      } else if (msg.type === "snapshot") {
        applySnapshot(msg);
        renderAll();
        startMedia();
        if (!live()) stopMedia();
      } else if (msg.type === "event") {
        const wasLive = live();
        applyEvent(msg.event);
        renderAll();
        if (!wasLive && live()) startMedia();
        if (wasLive && !live()) stopMedia();
      } else if (msg.type === "rtc") {
        media?.signal(msg);
      } else if (msg.type === "service") {
        // The database is away (or back): changes made meanwhile are refused, not lost.
        savingBanner.hidden = msg.state !== "unavailable";
        if (msg.state === "available") announce("Changes are saved again.");
      } else if (msg.type === "error") {
        // Media refusals come without an id: a refused screen is withdrawn; a description
        // the server could not apply (e.g. a late duplicate answer) is only rolled back.
        if (!msg.id && msg.code === "meeting_not_open") {
          // Live here but not yet in the server's media (the meeting opening just now):
          // the offer is sent again shortly, and there is nothing to tell anyone. When
          // the meeting is not live, the offer is withdrawn.
          if (live()) return media?.notOpen();
          media?.refused(false);
        }
        if (!msg.id && (msg.code === "not_presenter" || msg.code === "forbidden")) media?.refused(true);
        if (!msg.id && msg.code === "invalid_sdp") media?.refused(false);
        if (msg.code === "not_a_participant" || msg.code === "entry_denied" || msg.code === "account_deactivated") {
          // Shown the door: the server closes the connection and would refuse us again.
          state.waiting = false;
          state.fatal = msg;
          channel.close();
          renderAll();
        }
        showError(liveError(msg, state));
      }
    },
  });
  channel.start();

  return () => {
    clearInterval(ticker);
    stopMedia();
    channel.close();
    announce("");
  };
}

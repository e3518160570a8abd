//! The live meeting as pure rules: the events a session's history is made of, the commands
//! participants send, who may send which, and the state a room folds from the events
//! (presence, raised hands, presenter). No I/O: rooms in `crate::live` persist and
//! broadcast what [`decide`] returns.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::case::CaseState;
use super::conflict::Conflict;
use super::role::Role;
use super::schedule::{Session, SessionState};
use super::user::UserId;

/// One change to a live session. Stored as JSON in `session_events` and sent to clients
/// as the `event` of an event message. Events carry ids, never patient details.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    MeetingOpened,
    MeetingClosed,
    CaseStarted {
        case_id: Uuid,
    },
    CaseCompleted {
        case_id: Uuid,
    },
    /// The case moved to the next session of its series (`new_case_id` there), or, when no
    /// later session could take it, was flagged for rebooking (both `None`).
    CaseDeferred {
        case_id: Uuid,
        to_session_id: Option<Uuid>,
        new_case_id: Option<Uuid>,
    },
    AgendaReordered {
        case_ids: Vec<Uuid>,
    },
    ParticipantJoined {
        user_id: UserId,
        name: String,
        role: Role,
        /// The server instance the participant is connected to.
        instance: Uuid,
    },
    ParticipantLeft {
        user_id: UserId,
    },
    HandRaised {
        user_id: UserId,
    },
    HandLowered {
        user_id: UserId,
    },
    PresentRequested {
        user_id: UserId,
    },
    PresenterGranted {
        user_id: UserId,
    },
    PresenterRevoked {
        user_id: UserId,
    },
    /// A participant's microphone was muted or unmuted (everyone joins muted).
    MuteChanged {
        user_id: UserId,
        muted: bool,
    },
    /// The outcome of a case took shape (structured decisions only, no free text).
    OutcomeDrafted {
        case_id: Uuid,
        version: u32,
        summary: serde_json::Value,
    },
    OutcomeSigned {
        case_id: Uuid,
        version: u32,
        signed_by: UserId,
    },
    /// The chair confirmed the standard outcomes of listed (not discussed) cases: each
    /// gets a signed outcome with its standard plan, signed by `signed_by`.
    ListedConfirmed {
        case_ids: Vec<Uuid>,
        signed_by: UserId,
    },
    /// A guest (invited from another specialty) is waiting in the lobby for the chair to
    /// let them in: who they are and where from, never anything about the agenda.
    LobbyWaiting {
        user_id: UserId,
        name: String,
        role: Role,
        organisation: Option<String>,
        /// The server instance the guest is connected to.
        instance: Uuid,
    },
    /// A waiting guest went away before the chair decided.
    LobbyLeft {
        user_id: UserId,
    },
    /// The chair let a waiting guest in (for the rest of the meeting, reconnects included).
    LobbyAdmitted {
        user_id: UserId,
    },
    /// The chair turned a waiting guest away (for the rest of the meeting).
    LobbyDenied {
        user_id: UserId,
    },
    /// The shared viewer shows this (issue 18); with no `attachment_id` it is closed (the
    /// presenter handed back to screen share).
    ViewChanged(View),
}

/// What the shared image viewer shows, as the presenter (or the chair) drives it: an
/// attachment of the current case, its frame (from 0), the zoom (1 = the whole image
/// fits), the pan (the image point at the viewport's centre, as fractions of the image's
/// width and height: `[0.5, 0.5]` is the middle), the window (`wc`/`ww`, the file's own
/// when absent) and a ruler (two image-pixel points) when one is drawn. Ids and numbers
/// only: nothing of the patient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct View {
    pub attachment_id: Option<Uuid>,
    #[serde(default)]
    pub frame: u32,
    #[serde(default = "View::whole")]
    pub zoom: f64,
    #[serde(default = "View::middle")]
    pub pan: [f64; 2],
    #[serde(default)]
    pub wc: Option<f64>,
    #[serde(default)]
    pub ww: Option<f64>,
    #[serde(default)]
    pub ruler: Option<[[f64; 2]; 2]>,
}

impl View {
    /// Zoom limits: from a tenth of the fitted size to 32 times it.
    pub const ZOOM: std::ops::RangeInclusive<f64> = 0.1..=32.0;
    /// How often the shared view may change: faster changes are merged, the latest wins.
    pub const EVERY: std::time::Duration = std::time::Duration::from_millis(100);

    fn whole() -> f64 {
        1.0
    }

    fn middle() -> [f64; 2] {
        [0.5, 0.5]
    }

    /// The viewer closed (screen share again).
    pub fn closed() -> Self {
        View {
            attachment_id: None,
            frame: 0,
            zoom: 1.0,
            pan: Self::middle(),
            wc: None,
            ww: None,
            ruler: None,
        }
    }

    /// Numbers a viewer can show: finite, the zoom within [`Self::ZOOM`], the pan within
    /// the image's neighbourhood, the window given whole (`wc` with `ww` of at least 1).
    fn check(&self) -> Result<(), Refusal> {
        let bad = |why: &str| Err(refuse("invalid_view", why.to_string()));
        if !Self::ZOOM.contains(&self.zoom) {
            return bad("zoom is from 0.1 to 32");
        }
        if self.pan.iter().any(|p| !(-1.0..=2.0).contains(p)) {
            return bad("pan is the viewport centre as fractions of the image, from -1 to 2");
        }
        match (self.wc, self.ww) {
            (None, None) => {}
            (Some(c), Some(w)) if c.is_finite() && w.is_finite() && w >= 1.0 => {}
            _ => return bad("wc and ww come together, as numbers, and ww is at least 1"),
        }
        if self.ruler.is_some_and(|r| r.iter().flatten().any(|v| !v.is_finite())) {
            return bad("the ruler is two points of finite numbers");
        }
        if self.frame > 100_000 {
            return bad("no study has that many frames");
        }
        Ok(())
    }
}

/// Whether `actor` drives the shared viewer: the presenter, the chair or a coordinator.
pub fn drives_viewer(session: &Session, live: &LiveState, actor: &Actor) -> bool {
    live.presenter == Some(actor.user_id)
        || actor.role == Role::Coordinator
        || actor.user_id == session.plan.chair_id
}

/// Whether the viewer may show an attachment: one of the case under discussion, and an
/// image. `attachment` is the attachment's case and whether it is an image, when it
/// exists.
pub fn check_view_target(
    current: Option<Uuid>, attachment: Option<(Uuid, bool)>,
) -> Result<(), Refusal> {
    let current =
        current.ok_or_else(|| refuse("no_current_case", "no case is under discussion"))?;
    match attachment {
        Some((case_id, _)) if case_id != current => {
            Err(refuse("unknown_attachment", "that is not an attachment of the current case"))
        }
        None => Err(refuse("unknown_attachment", "that is not an attachment of the current case")),
        Some((_, false)) => Err(refuse("not_an_image", "only images open in the viewer")),
        Some((_, true)) => Ok(()),
    }
}

impl EventBody {
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::MeetingOpened => "meeting_opened",
            EventBody::MeetingClosed => "meeting_closed",
            EventBody::CaseStarted { .. } => "case_started",
            EventBody::CaseCompleted { .. } => "case_completed",
            EventBody::CaseDeferred { .. } => "case_deferred",
            EventBody::AgendaReordered { .. } => "agenda_reordered",
            EventBody::ParticipantJoined { .. } => "participant_joined",
            EventBody::ParticipantLeft { .. } => "participant_left",
            EventBody::HandRaised { .. } => "hand_raised",
            EventBody::HandLowered { .. } => "hand_lowered",
            EventBody::PresentRequested { .. } => "present_requested",
            EventBody::PresenterGranted { .. } => "presenter_granted",
            EventBody::PresenterRevoked { .. } => "presenter_revoked",
            EventBody::MuteChanged { .. } => "mute_changed",
            EventBody::OutcomeDrafted { .. } => "outcome_drafted",
            EventBody::OutcomeSigned { .. } => "outcome_signed",
            EventBody::ListedConfirmed { .. } => "listed_confirmed",
            EventBody::LobbyWaiting { .. } => "lobby_waiting",
            EventBody::LobbyLeft { .. } => "lobby_left",
            EventBody::LobbyAdmitted { .. } => "lobby_admitted",
            EventBody::LobbyDenied { .. } => "lobby_denied",
            EventBody::ViewChanged(_) => "view_changed",
        }
    }

    /// Whether the event changes the session or its agenda (rooms then reload them).
    pub fn touches_agenda(&self) -> bool {
        matches!(
            self,
            EventBody::MeetingOpened
                | EventBody::MeetingClosed
                | EventBody::CaseStarted { .. }
                | EventBody::CaseCompleted { .. }
                | EventBody::CaseDeferred { .. }
                | EventBody::AgendaReordered { .. }
                | EventBody::OutcomeSigned { .. }
                | EventBody::ListedConfirmed { .. }
        )
    }
}

/// An event to append: what happened, who caused it (none for the system), and the id of
/// the command it answers (on the command's last event, so a repeat finds its `seq`).
#[derive(Clone, Debug)]
pub struct NewLiveEvent {
    pub body: EventBody,
    pub actor: Option<UserId>,
    pub command_id: Option<String>,
}

/// A committed event.
#[derive(Clone, Debug)]
pub struct LiveEvent {
    pub session_id: Uuid,
    pub seq: u64,
    pub body: EventBody,
    pub actor: Option<UserId>,
    pub command_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// What participants send (`{"type":"command","command":{"kind":…}}`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    OpenMeeting,
    CloseMeeting,
    StartCase {
        case_id: Uuid,
    },
    NextCase,
    DeferCase {
        case_id: Uuid,
    },
    Reorder {
        case_ids: Vec<Uuid>,
    },
    RaiseHand,
    LowerHand {
        user_id: Option<UserId>,
    },
    RequestPresent,
    GrantPresent {
        user_id: UserId,
    },
    RevokePresent,
    /// The chair signs the standard outcomes of these listed cases in one action.
    ConfirmListed {
        case_ids: Vec<Uuid>,
    },
    /// Mutes or unmutes one's own microphone; the chair may also mute (not unmute)
    /// someone else.
    SetMuted {
        muted: bool,
        #[serde(default)]
        user_id: Option<UserId>,
    },
    /// The chair lets a guest waiting in the lobby in.
    Admit {
        user_id: UserId,
    },
    /// The chair turns a guest waiting in the lobby away.
    Deny {
        user_id: UserId,
    },
    /// The presenter (or the chair) sets what the shared viewer shows; see [`View`].
    View(View),
}

/// Who sent a command.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: UserId,
    pub role: Role,
}

/// A case as the rules need it: its place on the agenda and its state.
#[derive(Clone, Copy, Debug)]
pub struct AgendaItem {
    pub case_id: Uuid,
    pub state: CaseState,
}

/// Why a command was not applied: a stable code and a message for the sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// Someone connected to a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Participant {
    pub user_id: UserId,
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub instance: Uuid,
    pub since: DateTime<Utc>,
    /// Whether their microphone is muted (it is on joining); the SFU forwards no audio
    /// from a muted participant.
    pub muted: bool,
}

/// A guest waiting in the lobby, as the chair sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LobbyEntry {
    pub user_id: UserId,
    pub name: String,
    pub role: Role,
    pub organisation: Option<String>,
    #[serde(skip)]
    pub instance: Uuid,
    pub since: DateTime<Utc>,
}

/// The live part of a session's state, folded from its events. The agenda and the
/// session's own state live in their tables and are read from there.
#[derive(Clone, Debug, Default)]
pub struct LiveState {
    pub seq: u64,
    pub participants: BTreeMap<UserId, Participant>,
    /// In the order they were raised.
    pub hands: Vec<UserId>,
    pub present_requests: Vec<UserId>,
    pub presenter: Option<UserId>,
    /// The case under discussion and when its discussion started (the meeting's timer).
    pub discussing: Option<(Uuid, DateTime<Utc>)>,
    /// Guests waiting for the chair, and those the chair let in or turned away.
    pub lobby: BTreeMap<UserId, LobbyEntry>,
    pub admitted: BTreeSet<UserId>,
    pub denied: BTreeSet<UserId>,
    /// What the shared viewer shows, while it is open; closed when the case changes.
    pub view: Option<View>,
}

impl LiveState {
    /// Applies one committed event; events must come in `seq` order.
    pub fn apply(&mut self, event: &LiveEvent) {
        self.seq = event.seq;
        match &event.body {
            EventBody::ParticipantJoined { user_id, name, role, instance } => {
                self.participants.insert(
                    *user_id,
                    Participant {
                        user_id: *user_id,
                        name: name.clone(),
                        role: *role,
                        instance: *instance,
                        since: event.at,
                        muted: true,
                    },
                );
            }
            EventBody::MuteChanged { user_id, muted } => {
                if let Some(p) = self.participants.get_mut(user_id) {
                    p.muted = *muted;
                }
            }
            EventBody::ParticipantLeft { user_id } => {
                self.participants.remove(user_id);
                self.hands.retain(|u| u != user_id);
                self.present_requests.retain(|u| u != user_id);
                if self.presenter == Some(*user_id) {
                    self.presenter = None;
                }
            }
            EventBody::HandRaised { user_id } if !self.hands.contains(user_id) => {
                self.hands.push(*user_id);
            }
            EventBody::HandLowered { user_id } => self.hands.retain(|u| u != user_id),
            EventBody::PresentRequested { user_id } if !self.present_requests.contains(user_id) => {
                self.present_requests.push(*user_id);
            }
            EventBody::PresenterGranted { user_id } => {
                self.presenter = Some(*user_id);
                self.present_requests.retain(|u| u != user_id);
            }
            EventBody::PresenterRevoked { user_id } if self.presenter == Some(*user_id) => {
                self.presenter = None;
            }
            EventBody::MeetingClosed => {
                self.hands.clear();
                self.present_requests.clear();
                self.presenter = None;
                self.discussing = None;
                self.view = None;
            }
            EventBody::ViewChanged(view) => {
                self.view = view.attachment_id.is_some().then(|| view.clone());
            }
            EventBody::LobbyWaiting { user_id, name, role, organisation, instance } => {
                let entry = LobbyEntry {
                    user_id: *user_id,
                    name: name.clone(),
                    role: *role,
                    organisation: organisation.clone(),
                    instance: *instance,
                    since: event.at,
                };
                self.lobby.insert(*user_id, entry);
            }
            EventBody::LobbyLeft { user_id } => {
                self.lobby.remove(user_id);
            }
            EventBody::LobbyAdmitted { user_id } => {
                self.lobby.remove(user_id);
                self.denied.remove(user_id);
                self.admitted.insert(*user_id);
            }
            EventBody::LobbyDenied { user_id } => {
                self.lobby.remove(user_id);
                self.admitted.remove(user_id);
                self.denied.insert(*user_id);
            }
            EventBody::CaseStarted { case_id } => {
                self.discussing = Some((*case_id, event.at));
                self.view = None;
            }
            EventBody::CaseCompleted { case_id } | EventBody::CaseDeferred { case_id, .. }
                if self.discussing.is_some_and(|(id, _)| id == *case_id) =>
            {
                self.discussing = None;
                self.view = None;
            }
            _ => {}
        }
    }

    /// The events that take `user` out of the meeting: lowering their hand, ending their
    /// presenting, then their leaving (one change per event).
    pub fn departure(&self, user: UserId) -> Vec<EventBody> {
        let mut events = Vec::new();
        if self.hands.contains(&user) {
            events.push(EventBody::HandLowered { user_id: user });
        }
        if self.presenter == Some(user) {
            events.push(EventBody::PresenterRevoked { user_id: user });
        }
        events.push(EventBody::ParticipantLeft { user_id: user });
        events
    }

    /// Quoracy: the chair plus `required_others` other consultants or specialists
    /// (practitioners) present. Trainees and coordinators never count.
    pub fn quorum(&self, chair: UserId, required_others: u32) -> Quorum {
        let chair_present = self.participants.contains_key(&chair);
        let present_others = self
            .participants
            .values()
            .filter(|p| p.user_id != chair)
            .filter(|p| matches!(p.role, Role::Consultant | Role::Practitioner))
            .count() as u32;
        Quorum {
            chair_present,
            required_others,
            present_others,
            quorate: chair_present && present_others >= required_others,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Quorum {
    pub chair_present: bool,
    pub required_others: u32,
    pub present_others: u32,
    pub quorate: bool,
}

/// One stay of one person at a session (a new row each time they rejoin).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Attendance {
    pub session_id: Uuid,
    #[schema(value_type = Uuid)]
    pub user_id: UserId,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
}

/// When a case was discussed, as its meeting recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Discussion {
    pub started_at: DateTime<Utc>,
    /// When it was completed or deferred, or the meeting closed; `None` while it runs.
    pub ended_at: Option<DateTime<Utc>>,
}

/// The case's discussion in its session's `events` (in `seq` order): from its first
/// `case_started` to the first completion, deferral or close after it. `None` when the
/// meeting never took the case up.
pub fn discussion(events: &[LiveEvent], case_id: Uuid) -> Option<Discussion> {
    let start = events
        .iter()
        .position(|e| matches!(e.body, EventBody::CaseStarted { case_id: c } if c == case_id))?;
    let ended_at = events[start + 1..]
        .iter()
        .find(|e| match &e.body {
            EventBody::CaseCompleted { case_id: c }
            | EventBody::CaseDeferred { case_id: c, .. } => *c == case_id,
            EventBody::MeetingClosed => true,
            _ => false,
        })
        .map(|e| e.at);
    Some(Discussion { started_at: events[start].at, ended_at })
}

/// The time a letter or export gives for a case's discussion: when the meeting took it
/// up; for a case decided outside a meeting, the scheduled start, or `now` if that is
/// still to come (never a date the discussion had not reached).
pub fn discussed_at(
    discussion: Option<Discussion>, session: &Session, now: DateTime<Utc>,
) -> DateTime<Utc> {
    discussion.map_or(session.starts_at.min(now), |d| d.started_at)
}

/// The case under discussion, if any.
pub fn current_case(agenda: &[AgendaItem]) -> Option<Uuid> {
    agenda.iter().find(|c| c.state == CaseState::InDiscussion).map(|c| c.case_id)
}

/// A case waits for discussion while the meeting may start it.
fn waiting(item: &AgendaItem) -> bool {
    allows(case_transition(item.state, &EventBody::CaseStarted { case_id: item.case_id }))
}

fn allows<T>(transition: Option<Result<T, Conflict>>) -> bool {
    matches!(transition, Some(Ok(_)))
}

fn not_now(what: &str) -> Conflict {
    Conflict::invalid(format!("{what} is not possible now"))
}

/// The one definition of what an event does to its session's state: `None` when the
/// event does not change the session, else the new state or why it may not happen now.
/// The store applies it when appending; [`decide`] checks it before proposing.
pub fn session_transition(
    from: SessionState, event: &EventBody,
) -> Option<Result<SessionState, Conflict>> {
    use SessionState::{Closed, Live, Published, Scheduled};
    let (allowed, to, what) = match event {
        EventBody::MeetingOpened => {
            (matches!(from, Scheduled | Published), Live, "opening the meeting")
        }
        EventBody::MeetingClosed => (from == Live, Closed, "closing the meeting"),
        _ => return None,
    };
    Some(if allowed { Ok(to) } else { Err(not_now(what)) })
}

/// What an event does to the state of the case it names (see [`session_transition`]).
/// Completing a case that is not in discussion changes nothing: a case whose outcome
/// was signed during its discussion stays signed.
pub fn case_transition(from: CaseState, event: &EventBody) -> Option<Result<CaseState, Conflict>> {
    use CaseState::{Booked, Deferred, Discussed, InDiscussion, Listed};
    let (allowed, to, what) = match event {
        EventBody::CaseStarted { .. } => {
            (matches!(from, Booked | Listed), InDiscussion, "starting that case")
        }
        EventBody::CaseCompleted { .. } if from == InDiscussion => return Some(Ok(Discussed)),
        EventBody::CaseDeferred { .. } => {
            (matches!(from, Booked | Listed | InDiscussion), Deferred, "deferring that case")
        }
        _ => return None,
    };
    Some(if allowed { Ok(to) } else { Err(not_now(what)) })
}

/// When a command is decided: the time now, and how long before its scheduled start a
/// meeting may be opened.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub now: DateTime<Utc>,
    pub open_early: chrono::Duration,
}

/// `too_early` when a meeting is opened more than `open_early` before its scheduled start:
/// the outcome letters, reports and FHIR encounter would otherwise date a discussion by a
/// schedule it did not keep. A coordinator moves the session instead.
pub fn check_open_time(session: &Session, clock: Clock) -> Result<(), Refusal> {
    let earliest = session.starts_at - clock.open_early;
    if clock.now < earliest {
        return Err(refuse(
            "too_early",
            format!(
                "the meeting is scheduled for {} and may be opened from {} (UTC); \
                 a coordinator can move the session to an earlier time",
                session.starts_at.format("%Y-%m-%d %H:%M"),
                earliest.format("%Y-%m-%d %H:%M"),
            ),
        ));
    }
    Ok(())
}

/// Decides what a command does: the events to append (empty when it changes nothing), or
/// why it is refused. Chair commands are for the session's chair and coordinators.
pub fn decide(
    session: &Session, agenda: &[AgendaItem], live: &LiveState, actor: &Actor, command: &Command,
    clock: Clock,
) -> Result<Vec<EventBody>, Refusal> {
    let chairs = actor.role == Role::Coordinator || actor.user_id == session.plan.chair_id;
    let chair_only = || {
        if chairs {
            Ok(())
        } else {
            Err(refuse("forbidden", "only the chair or a coordinator may do that"))
        }
    };
    if let Command::OpenMeeting = command {
        chair_only()?;
        if !allows(session_transition(session.state, &EventBody::MeetingOpened)) {
            return Err(refuse(
                "invalid_state",
                format!("a {} session cannot be opened", session.state.as_str()),
            ));
        }
        check_open_time(session, clock)?;
        return Ok(vec![EventBody::MeetingOpened]);
    }
    // The lobby is kept from the first guest's arrival, before the meeting opens too.
    if let Command::Admit { user_id } | Command::Deny { user_id } = command {
        chair_only()?;
        if !live.lobby.contains_key(user_id) {
            return Err(refuse("not_waiting", "that person is not waiting in the lobby"));
        }
        let user_id = *user_id;
        return Ok(vec![if matches!(command, Command::Admit { .. }) {
            EventBody::LobbyAdmitted { user_id }
        } else {
            EventBody::LobbyDenied { user_id }
        }]);
    }
    if session.state != SessionState::Live {
        return Err(refuse("meeting_not_open", "the meeting is not open"));
    }
    let current = current_case(agenda);
    let complete_current =
        || current.map(|case_id| EventBody::CaseCompleted { case_id }).into_iter();
    let on_agenda = |case_id: Uuid| {
        agenda
            .iter()
            .find(|c| c.case_id == case_id)
            .ok_or_else(|| refuse("unknown_case", "that case is not on this agenda"))
    };
    match command {
        // Answered above; kept so the match stays exhaustive.
        Command::OpenMeeting => Err(refuse("invalid_state", "the meeting is already open")),
        Command::Admit { .. } | Command::Deny { .. } => Ok(Vec::new()),
        Command::CloseMeeting => {
            chair_only()?;
            Ok(complete_current().chain([EventBody::MeetingClosed]).collect())
        }
        Command::StartCase { case_id } => {
            chair_only()?;
            let case = on_agenda(*case_id)?;
            if current == Some(*case_id) {
                return Ok(Vec::new());
            }
            if !waiting(case) {
                return Err(refuse(
                    "invalid_state",
                    format!("a {} case cannot be started", case.state.as_str()),
                ));
            }
            Ok(complete_current().chain([EventBody::CaseStarted { case_id: *case_id }]).collect())
        }
        Command::NextCase => {
            chair_only()?;
            // Listed cases are not discussed: the chair confirms them together instead.
            let next = agenda
                .iter()
                .find(|c| waiting(c) && c.state != CaseState::Listed)
                .map(|c| c.case_id);
            if current.is_none() && next.is_none() {
                return Err(refuse("agenda_finished", "no case is waiting"));
            }
            Ok(complete_current()
                .chain(next.map(|case_id| EventBody::CaseStarted { case_id }))
                .collect())
        }
        Command::DeferCase { case_id } => {
            chair_only()?;
            let case = on_agenda(*case_id)?;
            let deferred = EventBody::CaseDeferred {
                case_id: *case_id,
                to_session_id: None,
                new_case_id: None,
            };
            if !allows(case_transition(case.state, &deferred)) {
                return Err(refuse(
                    "invalid_state",
                    format!("a {} case cannot be deferred", case.state.as_str()),
                ));
            }
            Ok(vec![deferred])
        }
        Command::Reorder { case_ids } => {
            chair_only()?;
            let now: Vec<Uuid> = agenda.iter().map(|c| c.case_id).collect();
            super::booking::check_agenda_order(&now, case_ids)
                .map_err(|c| refuse(c.code(), c.to_string()))?;
            Ok(vec![EventBody::AgendaReordered { case_ids: case_ids.clone() }])
        }
        Command::ConfirmListed { case_ids } => {
            if actor.user_id != session.plan.chair_id || actor.role != Role::Consultant {
                return Err(refuse("forbidden", "only the chair signs the listed cases' outcomes"));
            }
            if case_ids.is_empty() {
                return Err(refuse("invalid_message", "name the listed cases to confirm"));
            }
            for case_id in case_ids {
                if on_agenda(*case_id)?.state != CaseState::Listed {
                    return Err(refuse(
                        "invalid_state",
                        "only listed cases are confirmed together",
                    ));
                }
            }
            let signed_by = actor.user_id;
            Ok(vec![EventBody::ListedConfirmed { case_ids: case_ids.clone(), signed_by }])
        }
        Command::RaiseHand => Ok(if live.hands.contains(&actor.user_id) {
            Vec::new()
        } else {
            vec![EventBody::HandRaised { user_id: actor.user_id }]
        }),
        Command::LowerHand { user_id } => {
            let whose = user_id.unwrap_or(actor.user_id);
            if whose != actor.user_id {
                chair_only()?;
            }
            Ok(if live.hands.contains(&whose) {
                vec![EventBody::HandLowered { user_id: whose }]
            } else {
                Vec::new()
            })
        }
        Command::RequestPresent => {
            if actor.role == Role::Trainee {
                return Err(refuse("forbidden", "trainees do not present"));
            }
            let asked = live.present_requests.contains(&actor.user_id)
                || live.presenter == Some(actor.user_id);
            Ok(if asked {
                Vec::new()
            } else {
                vec![EventBody::PresentRequested { user_id: actor.user_id }]
            })
        }
        Command::GrantPresent { user_id } => {
            chair_only()?;
            let target = live
                .participants
                .get(user_id)
                .ok_or_else(|| refuse("not_present", "that person is not in the meeting"))?;
            if target.role == Role::Trainee {
                return Err(refuse("forbidden", "trainees do not present"));
            }
            if live.presenter == Some(*user_id) {
                return Ok(Vec::new());
            }
            Ok(live
                .presenter
                .map(|old| EventBody::PresenterRevoked { user_id: old })
                .into_iter()
                .chain([EventBody::PresenterGranted { user_id: *user_id }])
                .collect())
        }
        Command::RevokePresent => {
            let Some(presenter) = live.presenter else {
                return Ok(Vec::new());
            };
            if presenter != actor.user_id {
                chair_only()?;
            }
            Ok(vec![EventBody::PresenterRevoked { user_id: presenter }])
        }
        Command::View(view) => {
            if !drives_viewer(session, live, actor) {
                return Err(refuse(
                    "forbidden",
                    "only the presenter or the chair drives the viewer",
                ));
            }
            if view.attachment_id.is_none() {
                return Ok(if live.view.is_some() {
                    vec![EventBody::ViewChanged(View::closed())]
                } else {
                    Vec::new()
                });
            }
            if current.is_none() {
                return Err(refuse("no_current_case", "no case is under discussion"));
            }
            view.check()?;
            Ok(if live.view.as_ref() == Some(view) {
                Vec::new()
            } else {
                vec![EventBody::ViewChanged(view.clone())]
            })
        }
        Command::SetMuted { muted, user_id } => {
            let whose = user_id.unwrap_or(actor.user_id);
            if whose != actor.user_id {
                chair_only()?;
                if !muted {
                    return Err(refuse(
                        "forbidden",
                        "only participants unmute their own microphone",
                    ));
                }
            }
            let participant = live
                .participants
                .get(&whose)
                .ok_or_else(|| refuse("not_present", "that person is not in the meeting"))?;
            Ok(if participant.muted == *muted {
                Vec::new()
            } else {
                vec![EventBody::MuteChanged { user_id: whose, muted: *muted }]
            })
        }
    }
}

/// The live meeting's rules for its media, as the SFU applies them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MediaPolicy {
    /// The meeting is live (media is refused before and closed after).
    pub open: bool,
    /// The one participant whose screen is forwarded.
    pub presenter: Option<UserId>,
    /// Participants whose microphones are forwarded (everyone joins muted).
    pub unmuted: std::collections::BTreeSet<UserId>,
}

/// What the SFU may forward, as the live state says it: the presenter's screen and the
/// microphones of participants who unmuted, while the meeting is live.
pub fn media_policy(session: &Session, live: &LiveState) -> MediaPolicy {
    let open = session.state == SessionState::Live;
    MediaPolicy {
        open,
        presenter: live.presenter.filter(|_| open),
        unmuted: live
            .participants
            .values()
            .filter(|p| open && !p.muted)
            .map(|p| p.user_id)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(chair: UserId, state: SessionState) -> Session {
        Session::example(chair, Utc::now(), 8, 2, state)
    }

    /// The scheduled start, with the default 30 minutes' early opening.
    fn on_time(s: &Session) -> Clock {
        Clock { now: s.starts_at, open_early: chrono::Duration::minutes(30) }
    }

    fn item(state: CaseState) -> AgendaItem {
        AgendaItem { case_id: Uuid::new_v4(), state }
    }

    fn joined(live: &mut LiveState, user: UserId, role: Role) {
        let seq = live.seq + 1;
        live.apply(&LiveEvent {
            session_id: Uuid::new_v4(),
            seq,
            body: EventBody::ParticipantJoined {
                user_id: user,
                name: "Someone".into(),
                role,
                instance: Uuid::new_v4(),
            },
            actor: Some(user),
            command_id: None,
            at: Utc::now(),
        });
    }

    #[test]
    fn participants_join_muted_and_only_unmute_themselves() {
        let chair = UserId::new();
        let physio = UserId::new();
        let s = session(chair, SessionState::Live);
        let mut live = LiveState::default();
        joined(&mut live, chair, Role::Consultant);
        joined(&mut live, physio, Role::Practitioner);
        assert!(live.participants[&physio].muted);
        assert!(media_policy(&s, &live).unmuted.is_empty());
        let me = Actor { user_id: physio, role: Role::Practitioner };
        let unmute = Command::SetMuted { muted: false, user_id: None };
        let events = decide(&s, &[], &live, &me, &unmute, on_time(&s)).unwrap();
        assert_eq!(events, vec![EventBody::MuteChanged { user_id: physio, muted: false }]);
        live.apply(&LiveEvent {
            session_id: s.id,
            seq: 3,
            body: events[0].clone(),
            actor: Some(physio),
            command_id: None,
            at: Utc::now(),
        });
        assert!(media_policy(&s, &live).unmuted.contains(&physio));
        // Unmuting again changes nothing; muting someone else is for the chair only.
        assert!(decide(&s, &[], &live, &me, &unmute, on_time(&s)).unwrap().is_empty());
        let mute_chair = Command::SetMuted { muted: true, user_id: Some(chair) };
        assert_eq!(
            decide(&s, &[], &live, &me, &mute_chair, on_time(&s)).unwrap_err().code,
            "forbidden"
        );
        let chair_actor = Actor { user_id: chair, role: Role::Consultant };
        let mute_physio = Command::SetMuted { muted: true, user_id: Some(physio) };
        assert_eq!(
            decide(&s, &[], &live, &chair_actor, &mute_physio, on_time(&s)).unwrap().len(),
            1
        );
        let unmute_physio = Command::SetMuted { muted: false, user_id: Some(physio) };
        assert_eq!(
            decide(&s, &[], &live, &chair_actor, &unmute_physio, on_time(&s)).unwrap_err().code,
            "forbidden"
        );
        // A closed meeting forwards nothing.
        let closed = session(chair, SessionState::Closed);
        assert_eq!(media_policy(&closed, &live), MediaPolicy::default());
    }

    #[test]
    fn the_viewer_follows_its_driver_and_closes_with_the_case() {
        let chair = UserId::new();
        let physio = UserId::new();
        let s = session(chair, SessionState::Live);
        let current = item(CaseState::InDiscussion);
        let agenda = [current];
        let mut live = LiveState::default();
        let me = Actor { user_id: physio, role: Role::Practitioner };
        let shown = View { attachment_id: Some(Uuid::new_v4()), zoom: 2.0, ..View::closed() };
        let cmd = Command::View(shown.clone());
        assert_eq!(
            decide(&s, &agenda, &live, &me, &cmd, on_time(&s)).unwrap_err().code,
            "forbidden"
        );
        live.presenter = Some(physio);
        let events = decide(&s, &agenda, &live, &me, &cmd, on_time(&s)).unwrap();
        assert_eq!(events, vec![EventBody::ViewChanged(shown.clone())]);
        let at = |live: &mut LiveState, body: EventBody| {
            let seq = live.seq + 1;
            live.apply(&LiveEvent {
                session_id: s.id,
                seq,
                body,
                actor: None,
                command_id: None,
                at: Utc::now(),
            });
        };
        at(&mut live, events[0].clone());
        assert_eq!(live.view.as_ref(), Some(&shown));
        // The same view again changes nothing; numbers out of range are refused.
        assert!(decide(&s, &agenda, &live, &me, &cmd, on_time(&s)).unwrap().is_empty());
        for bad in [
            View { zoom: 0.0, ..shown.clone() },
            View { pan: [f64::NAN, 0.5], ..shown.clone() },
            View { wc: Some(40.0), ww: None, ..shown.clone() },
            View { wc: Some(40.0), ww: Some(0.5), ..shown.clone() },
            View { ruler: Some([[0.0, 0.0], [f64::INFINITY, 1.0]]), ..shown.clone() },
        ] {
            let refused = decide(&s, &agenda, &live, &me, &Command::View(bad), on_time(&s));
            assert_eq!(refused.unwrap_err().code, "invalid_view");
        }
        // Handing back closes it; the next case closes it too.
        let back = Command::View(View::closed());
        assert_eq!(
            decide(&s, &agenda, &live, &me, &back, on_time(&s)).unwrap(),
            vec![EventBody::ViewChanged(View::closed())]
        );
        at(&mut live, EventBody::CaseStarted { case_id: Uuid::new_v4() });
        assert_eq!(live.view, None);
        assert!(decide(&s, &agenda, &live, &me, &back, on_time(&s)).unwrap().is_empty());
        assert_eq!(check_view_target(None, None).unwrap_err().code, "no_current_case");
        let case = current.case_id;
        assert_eq!(
            check_view_target(Some(case), Some((Uuid::new_v4(), true))).unwrap_err().code,
            "unknown_attachment"
        );
        assert_eq!(
            check_view_target(Some(case), Some((case, false))).unwrap_err().code,
            "not_an_image"
        );
        assert!(check_view_target(Some(case), Some((case, true))).is_ok());
    }

    #[test]
    fn next_case_completes_the_current_and_starts_the_next_waiting() {
        let chair = UserId::new();
        let s = session(chair, SessionState::Live);
        // A listed case (not discussed) is passed by.
        let agenda = [
            item(CaseState::Discussed),
            item(CaseState::InDiscussion),
            item(CaseState::Listed),
            item(CaseState::Booked),
        ];
        let actor = Actor { user_id: chair, role: Role::Consultant };
        let events =
            decide(&s, &agenda, &LiveState::default(), &actor, &Command::NextCase, on_time(&s));
        assert_eq!(
            events.unwrap(),
            vec![
                EventBody::CaseCompleted { case_id: agenda[1].case_id },
                EventBody::CaseStarted { case_id: agenda[3].case_id }
            ]
        );
    }

    #[test]
    fn participants_may_not_drive_the_agenda() {
        let s = session(UserId::new(), SessionState::Live);
        let agenda = [item(CaseState::Listed)];
        let actor = Actor { user_id: UserId::new(), role: Role::Practitioner };
        for command in [
            Command::NextCase,
            Command::CloseMeeting,
            Command::StartCase { case_id: agenda[0].case_id },
            Command::LowerHand { user_id: Some(UserId::new()) },
        ] {
            let refusal = decide(&s, &agenda, &LiveState::default(), &actor, &command, on_time(&s));
            assert_eq!(refusal.unwrap_err().code, "forbidden", "{command:?}");
        }
        let raised =
            decide(&s, &agenda, &LiveState::default(), &actor, &Command::RaiseHand, on_time(&s));
        assert_eq!(raised.unwrap(), vec![EventBody::HandRaised { user_id: actor.user_id }]);
    }

    #[test]
    fn nothing_but_opening_before_the_meeting_is_open() {
        let chair = UserId::new();
        let s = session(chair, SessionState::Published);
        let actor = Actor { user_id: chair, role: Role::Consultant };
        let live = LiveState::default();
        assert_eq!(
            decide(&s, &[], &live, &actor, &Command::NextCase, on_time(&s)).unwrap_err().code,
            "meeting_not_open"
        );
        assert_eq!(
            decide(&s, &[], &live, &actor, &Command::OpenMeeting, on_time(&s)).unwrap(),
            vec![EventBody::MeetingOpened]
        );
    }

    #[test]
    fn a_discussion_runs_from_the_start_of_its_case_to_its_end() {
        let s = session(UserId::new(), SessionState::Live);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = s.starts_at - chrono::Duration::days(19);
        let event = |seq: u64, body| LiveEvent {
            session_id: s.id,
            seq,
            body,
            actor: None,
            command_id: None,
            at: t0 + chrono::Duration::minutes(seq as i64),
        };
        let events = [
            event(1, EventBody::MeetingOpened),
            event(2, EventBody::CaseStarted { case_id: a }),
            event(3, EventBody::CaseCompleted { case_id: a }),
            event(4, EventBody::CaseStarted { case_id: b }),
            event(5, EventBody::MeetingClosed),
        ];
        let d = discussion(&events, a).unwrap();
        assert_eq!((d.started_at, d.ended_at), (events[1].at, Some(events[2].at)));
        assert_eq!(discussion(&events, b).unwrap().ended_at, Some(events[4].at));
        assert_eq!(discussion(&events[..4], b).unwrap().ended_at, None);
        assert_eq!(discussion(&events, Uuid::new_v4()), None);
        // The actual date, not the scheduled one (the meeting ran 19 days early).
        assert_eq!(discussed_at(Some(d), &s, s.starts_at), events[1].at);
        // Decided outside a meeting: the scheduled start, or now if that is to come.
        assert_eq!(discussed_at(None, &s, s.starts_at + chrono::Duration::days(1)), s.starts_at);
        assert_eq!(discussed_at(None, &s, t0), t0);
    }

    #[test]
    fn a_meeting_opens_from_thirty_minutes_before_its_start() {
        let chair = UserId::new();
        let s = session(chair, SessionState::Published);
        let actor = Actor { user_id: chair, role: Role::Consultant };
        let at = |minutes_before: i64| Clock {
            now: s.starts_at - chrono::Duration::minutes(minutes_before),
            open_early: chrono::Duration::minutes(30),
        };
        let open =
            |clock| decide(&s, &[], &LiveState::default(), &actor, &Command::OpenMeeting, clock);
        assert_eq!(open(at(30)).unwrap(), vec![EventBody::MeetingOpened]);
        assert_eq!(open(at(-120)).unwrap(), vec![EventBody::MeetingOpened]);
        let refusal = open(at(31)).unwrap_err();
        assert_eq!(refusal.code, "too_early");
        assert!(refusal.message.contains("coordinator"), "{}", refusal.message);
        // 19 days early, as a chair once did.
        assert_eq!(open(at(19 * 24 * 60)).unwrap_err().code, "too_early");
        // Someone other than the chair is refused for that first.
        let other = Actor { user_id: UserId::new(), role: Role::Consultant };
        let refusal = decide(&s, &[], &LiveState::default(), &other, &Command::OpenMeeting, at(60));
        assert_eq!(refusal.unwrap_err().code, "forbidden");
    }

    #[test]
    fn leaving_clears_hand_and_presenting() {
        let user = UserId::new();
        let mut live = LiveState::default();
        let event = |seq, body| LiveEvent {
            session_id: Uuid::nil(),
            seq,
            body,
            actor: None,
            command_id: None,
            at: Utc::now(),
        };
        live.apply(&event(
            1,
            EventBody::ParticipantJoined {
                user_id: user,
                name: "A".into(),
                role: Role::Practitioner,
                instance: Uuid::nil(),
            },
        ));
        live.apply(&event(2, EventBody::HandRaised { user_id: user }));
        live.apply(&event(3, EventBody::PresenterGranted { user_id: user }));
        assert_eq!(
            live.departure(user),
            vec![
                EventBody::HandLowered { user_id: user },
                EventBody::PresenterRevoked { user_id: user },
                EventBody::ParticipantLeft { user_id: user },
            ]
        );
        assert_eq!(live.quorum(UserId::new(), 1).present_others, 1);
    }

    /// One event of every kind, for the transitions' "changes nothing" cases.
    fn every_event() -> Vec<EventBody> {
        let (case_id, user_id) = (Uuid::new_v4(), UserId::new());
        vec![
            EventBody::MeetingOpened,
            EventBody::MeetingClosed,
            EventBody::CaseStarted { case_id },
            EventBody::CaseCompleted { case_id },
            EventBody::CaseDeferred { case_id, to_session_id: None, new_case_id: None },
            EventBody::AgendaReordered { case_ids: vec![case_id] },
            EventBody::ParticipantJoined {
                user_id,
                name: "A".into(),
                role: Role::Consultant,
                instance: Uuid::nil(),
            },
            EventBody::ParticipantLeft { user_id },
            EventBody::HandRaised { user_id },
            EventBody::HandLowered { user_id },
            EventBody::PresentRequested { user_id },
            EventBody::PresenterGranted { user_id },
            EventBody::PresenterRevoked { user_id },
            EventBody::MuteChanged { user_id, muted: false },
            EventBody::OutcomeDrafted { case_id, version: 1, summary: serde_json::Value::Null },
            EventBody::OutcomeSigned { case_id, version: 1, signed_by: user_id },
            EventBody::LobbyWaiting {
                user_id,
                name: "G".into(),
                role: Role::Consultant,
                organisation: None,
                instance: Uuid::nil(),
            },
            EventBody::LobbyLeft { user_id },
            EventBody::LobbyAdmitted { user_id },
            EventBody::LobbyDenied { user_id },
        ]
    }

    #[test]
    fn a_meeting_opens_once_scheduled_or_published_and_closes_once_live() {
        use SessionState::*;
        let refused =
            |what: &str| Some(Err(Conflict::invalid(format!("{what} is not possible now"))));
        for from in [Scheduled, Published, Live, Closed, Cancelled] {
            for event in every_event() {
                let expected = match (&event, from) {
                    (EventBody::MeetingOpened, Scheduled | Published) => Some(Ok(Live)),
                    (EventBody::MeetingOpened, _) => refused("opening the meeting"),
                    (EventBody::MeetingClosed, Live) => Some(Ok(Closed)),
                    (EventBody::MeetingClosed, _) => refused("closing the meeting"),
                    _ => None,
                };
                assert_eq!(session_transition(from, &event), expected, "{from:?} {event:?}");
            }
        }
        assert_eq!(
            session_transition(Closed, &EventBody::MeetingOpened).unwrap().unwrap_err().to_string(),
            "opening the meeting is not possible now"
        );
    }

    #[test]
    fn cases_start_when_waiting_complete_in_discussion_and_defer_until_discussed() {
        use CaseState::*;
        let refused =
            |what: &str| Some(Err(Conflict::invalid(format!("{what} is not possible now"))));
        let states = [Booked, Listed, InDiscussion, Discussed, OutcomeSigned, Deferred, Withdrawn];
        for from in states {
            for event in every_event() {
                let expected = match (&event, from) {
                    (EventBody::CaseStarted { .. }, Booked | Listed) => Some(Ok(InDiscussion)),
                    (EventBody::CaseStarted { .. }, _) => refused("starting that case"),
                    (EventBody::CaseCompleted { .. }, InDiscussion) => Some(Ok(Discussed)),
                    // A case signed during its discussion stays signed; others unchanged.
                    (EventBody::CaseCompleted { .. }, _) => None,
                    (EventBody::CaseDeferred { .. }, Booked | Listed | InDiscussion) => {
                        Some(Ok(Deferred))
                    }
                    (EventBody::CaseDeferred { .. }, _) => refused("deferring that case"),
                    _ => None,
                };
                assert_eq!(case_transition(from, &event), expected, "{from:?} {event:?}");
            }
        }
    }

    fn happened(live: &mut LiveState, body: EventBody) {
        let seq = live.seq + 1;
        let at = Utc::now();
        let event =
            LiveEvent { session_id: Uuid::new_v4(), seq, body, actor: None, command_id: None, at };
        live.apply(&event);
    }

    #[test]
    fn the_chair_admits_or_denies_a_waiting_guest_and_the_guest_may_not_chair() {
        let chair = UserId::new();
        let guest = UserId::new();
        let s = session(chair, SessionState::Published);
        let mut live = LiveState::default();
        let the_chair = Actor { user_id: chair, role: Role::Consultant };
        let admit = Command::Admit { user_id: guest };
        let refused = decide(&s, &[], &live, &the_chair, &admit, on_time(&s)).unwrap_err();
        assert_eq!(refused.code, "not_waiting");
        happened(
            &mut live,
            EventBody::LobbyWaiting {
                user_id: guest,
                name: "Dr Nora Neuro".into(),
                role: Role::Consultant,
                organisation: Some("City Neurology".into()),
                instance: Uuid::nil(),
            },
        );
        assert_eq!(live.lobby[&guest].organisation.as_deref(), Some("City Neurology"));
        // Only the chair (or a coordinator) decides, before the meeting opens too.
        let as_guest = Actor { user_id: guest, role: Role::Consultant };
        let refused = decide(&s, &[], &live, &as_guest, &admit, on_time(&s)).unwrap_err();
        assert_eq!(refused.code, "forbidden");
        let events = decide(&s, &[], &live, &the_chair, &admit, on_time(&s)).unwrap();
        assert_eq!(events, vec![EventBody::LobbyAdmitted { user_id: guest }]);
        happened(&mut live, events[0].clone());
        assert!(live.lobby.is_empty() && live.admitted.contains(&guest));
        // Admitted, a guest speaks and may present but does not drive.
        let live_session = session(chair, SessionState::Live);
        joined(&mut live, guest, Role::Consultant);
        let clock = on_time(&live_session);
        assert!(decide(&live_session, &[], &live, &as_guest, &Command::RaiseHand, clock).is_ok());
        let grant = Command::GrantPresent { user_id: guest };
        assert!(decide(&live_session, &[], &live, &the_chair, &grant, clock).is_ok());
        for command in [Command::NextCase, Command::Reorder { case_ids: vec![] }] {
            let refusal = decide(&live_session, &[], &live, &as_guest, &command, clock);
            assert_eq!(refusal.unwrap_err().code, "forbidden", "{command:?}");
        }
        // A second guest is turned away; a guest who leaves the lobby is no longer waiting.
        let other = UserId::new();
        for body in [
            EventBody::LobbyWaiting {
                user_id: other,
                name: "Pat Psych".into(),
                role: Role::Practitioner,
                organisation: None,
                instance: Uuid::nil(),
            },
            EventBody::LobbyDenied { user_id: other },
        ] {
            happened(&mut live, body);
        }
        assert!(live.denied.contains(&other) && !live.lobby.contains_key(&other));
        let deny = Command::Deny { user_id: other };
        assert_eq!(
            decide(&s, &[], &live, &the_chair, &deny, on_time(&s)).unwrap_err().code,
            "not_waiting"
        );
    }

    #[test]
    fn decide_refuses_what_the_transitions_refuse() {
        let chair = UserId::new();
        let actor = Actor { user_id: chair, role: Role::Consultant };
        let live = LiveState::default();
        let closed = session(chair, SessionState::Closed);
        let open = decide(&closed, &[], &live, &actor, &Command::OpenMeeting, on_time(&closed));
        assert_eq!(open.unwrap_err().code, "invalid_state");
        let s = session(chair, SessionState::Live);
        let agenda = [item(CaseState::Discussed), item(CaseState::InDiscussion)];
        for command in [
            Command::StartCase { case_id: agenda[0].case_id },
            Command::DeferCase { case_id: agenda[0].case_id },
        ] {
            let refusal = decide(&s, &agenda, &live, &actor, &command, on_time(&s));
            assert_eq!(refusal.unwrap_err().code, "invalid_state", "{command:?}");
        }
        let defer = Command::DeferCase { case_id: agenda[1].case_id };
        assert_eq!(decide(&s, &agenda, &live, &actor, &defer, on_time(&s)).unwrap().len(), 1);
        // Nothing waits once the only undiscussed case is under discussion.
        let next = decide(&s, &agenda[..1], &live, &actor, &Command::NextCase, on_time(&s));
        assert_eq!(next.unwrap_err().code, "agenda_finished");
    }
}

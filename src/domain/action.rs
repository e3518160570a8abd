//! Decisions as tracked actions (issue 16): each investigation and referral of a signed
//! outcome becomes an action with an owner, a due date from its urgency (per specialty)
//! and a status. This module owns the rules as pure functions: what actions a signed
//! version asks for, how an amendment's decisions replace the open ones, which status
//! changes are allowed, and the list's order. No I/O and no access rules here.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::case::Urgency;
use super::conflict::Conflict;
use super::outcome::OutcomeDraft;
use super::parse::{bounded_text, ParseError};
use super::schedule::CLINIC_TZ;
use super::user::UserId;

/// A result summary is at most this long.
pub const MAX_RESULT_SUMMARY: usize = 500;
/// A cancellation reason is at most this long.
pub const MAX_CANCEL_REASON: usize = 500;
/// The most days a due-date setting may give.
pub const MAX_DUE_DAYS: u16 = 365;
/// Why an amendment cancels the actions its new version no longer asks for.
pub const SUPERSEDED: &str = "superseded by amendment";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Investigation,
    Referral,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Investigation => "investigation",
            ActionKind::Referral => "referral",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [ActionKind::Investigation, ActionKind::Referral].into_iter().find(|k| k.as_str() == raw)
    }
}

/// Where an action is: `requested → booked → done → result_received → closed`, or
/// `cancelled` (with a reason) from any open state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    Requested,
    Booked,
    Done,
    ResultReceived,
    Closed,
    Cancelled,
}

impl ActionStatus {
    pub const ALL: [ActionStatus; 6] = [
        ActionStatus::Requested,
        ActionStatus::Booked,
        ActionStatus::Done,
        ActionStatus::ResultReceived,
        ActionStatus::Closed,
        ActionStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Requested => "requested",
            ActionStatus::Booked => "booked",
            ActionStatus::Done => "done",
            ActionStatus::ResultReceived => "result_received",
            ActionStatus::Closed => "closed",
            ActionStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str, field: &'static str) -> Result<Self, ParseError> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw.trim()).ok_or_else(|| {
            ParseError::new(
                "invalid_status",
                field,
                "must be requested, booked, done, result_received, closed or cancelled",
            )
        })
    }

    /// Open: still to happen (neither closed nor cancelled).
    pub fn is_open(self) -> bool {
        !matches!(self, ActionStatus::Closed | ActionStatus::Cancelled)
    }
}

/// Days from signing to an action's due date, by urgency; a specialty's setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DueDays {
    pub urgent: u16,
    pub routine: u16,
}

impl Default for DueDays {
    fn default() -> Self {
        DueDays { urgent: 14, routine: 42 }
    }
}

/// `{urgent, routine}` as it arrives: whole days, each 0–365.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct DueDaysRequest {
    pub urgent: Option<i64>,
    pub routine: Option<i64>,
}

impl TryFrom<DueDaysRequest> for DueDays {
    type Error = ParseError;

    fn try_from(r: DueDaysRequest) -> Result<Self, ParseError> {
        let days = |v: Option<i64>, field: &'static str| {
            v.and_then(|d| u16::try_from(d).ok()).filter(|d| *d <= MAX_DUE_DAYS).ok_or_else(|| {
                ParseError::new(
                    "invalid_due_days",
                    field,
                    format!("must be a whole number of days from 0 to {MAX_DUE_DAYS}"),
                )
            })
        };
        Ok(DueDays { urgent: days(r.urgent, "urgent")?, routine: days(r.routine, "routine")? })
    }
}

impl DueDays {
    /// The due date of an action of `urgency` asked for at `now`: the days from the UK
    /// local date.
    pub fn due_at(&self, urgency: Urgency, now: DateTime<Utc>) -> NaiveDate {
        self.due_on(urgency, now.with_timezone(&CLINIC_TZ).date_naive())
    }

    /// The due date of an action of `urgency` asked for `on`.
    pub fn due_on(&self, urgency: Urgency, on: NaiveDate) -> NaiveDate {
        let days = match urgency {
            Urgency::Urgent => self.urgent,
            Urgency::Routine => self.routine,
        };
        on + Duration::days(i64::from(days))
    }
}

/// One decision of a signed version that becomes an action: its kind, what it is (from
/// the vocabularies only, e.g. `MRI (lower back)`, `Referral: Spinal surgery`, so no free
/// text or identifier is ever in it) and its urgency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub kind: ActionKind,
    pub what: String,
    pub urgency: Urgency,
}

/// The decisions of an outcome body that become actions, investigations first, each in
/// the order the version lists them.
pub fn decisions(body: &OutcomeDraft) -> Vec<Decision> {
    let investigations = body.investigations.iter().map(|i| Decision {
        kind: ActionKind::Investigation,
        what: match &i.site {
            Some(site) => format!("{} ({})", i.kind.label(), site.as_str()),
            None => i.kind.label().to_string(),
        },
        urgency: i.urgency,
    });
    let referrals = body.referrals.iter().map(|r| Decision {
        kind: ActionKind::Referral,
        what: format!("Referral: {}", r.destination.label()),
        urgency: r.urgency,
    });
    investigations.chain(referrals).collect()
}

/// A recorded result: a short summary, optionally an attachment of the case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActionResult {
    pub summary: String,
    pub attachment_id: Option<Uuid>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ActionResultRequest {
    #[serde(default)]
    pub summary: String,
    pub attachment_id: Option<Uuid>,
}

impl TryFrom<ActionResultRequest> for ActionResult {
    type Error = ParseError;

    fn try_from(r: ActionResultRequest) -> Result<Self, ParseError> {
        let summary = bounded_text(&r.summary, "summary", MAX_RESULT_SUMMARY, true)
            .map_err(|e| e.for_field("result.summary"))?;
        Ok(ActionResult { summary, attachment_id: r.attachment_id })
    }
}

/// A tracked action, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub id: Uuid,
    pub case_id: Uuid,
    /// The outcome version that first asked for it.
    pub outcome_version: u32,
    pub kind: ActionKind,
    pub what: String,
    pub urgency: Urgency,
    pub owner_id: UserId,
    pub due_on: NaiveDate,
    pub status: ActionStatus,
    pub result: Option<ActionResult>,
    pub cancel_reason: Option<String>,
    /// The follow-up case booked from its result, if any.
    pub rediscuss_case_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Action {
    /// A new action for `decision` of version `version` of `case_id`, owned by `owner`,
    /// due by `days` from `now` (UK local date).
    pub fn requested(
        id: Uuid, (case_id, version): (Uuid, u32), decision: &Decision, owner: UserId,
        days: &DueDays, now: DateTime<Utc>,
    ) -> Self {
        Action {
            id,
            case_id,
            outcome_version: version,
            kind: decision.kind,
            what: decision.what.clone(),
            urgency: decision.urgency,
            owner_id: owner,
            due_on: days.due_at(decision.urgency, now),
            status: ActionStatus::Requested,
            result: None,
            cancel_reason: None,
            rediscuss_case_id: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Overdue on `today`: open and due before it.
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        self.status.is_open() && self.due_on < today
    }
}

/// An action as the API shows it: the case's id and the decision's vocabulary only, no
/// patient identifier.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ActionView<'a> {
    pub id: Uuid,
    pub case_id: Uuid,
    pub kind: ActionKind,
    #[schema(value_type = String)]
    pub what: &'a str,
    pub urgency: Urgency,
    #[schema(value_type = Uuid)]
    pub owner_id: UserId,
    pub due_on: NaiveDate,
    pub status: ActionStatus,
    pub overdue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ActionResult>)]
    pub result: Option<&'a ActionResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cancel_reason: Option<&'a str>,
    pub outcome_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rediscuss_case_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<'a> ActionView<'a> {
    pub fn of(a: &'a Action, today: NaiveDate) -> Self {
        ActionView {
            id: a.id,
            case_id: a.case_id,
            kind: a.kind,
            what: &a.what,
            urgency: a.urgency,
            owner_id: a.owner_id,
            due_on: a.due_on,
            status: a.status,
            overdue: a.is_overdue(today),
            result: a.result.as_ref(),
            cancel_reason: a.cancel_reason.as_deref(),
            outcome_version: a.outcome_version,
            rediscuss_case_id: a.rediscuss_case_id,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// How an amendment's decisions replace the case's actions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replacement {
    /// Actions asked for again; with the new urgency when it changed.
    pub kept: Vec<(Uuid, Option<Urgency>)>,
    /// Open actions the new version no longer asks for: cancelled as [`SUPERSEDED`].
    pub cancelled: Vec<Uuid>,
    /// Decisions no action stands for yet: new actions.
    pub added: Vec<Decision>,
}

/// Matches the signed version's `decisions` against the case's `existing` actions
/// (oldest first): a decision of the same kind and `what` as an existing action that was
/// not cancelled keeps it (its status, owner and result; an urgency change moves its due
/// date); open actions left unmatched are cancelled as superseded; closed ones stay
/// closed; decisions left unmatched become new actions. On a first signing there are no
/// existing actions, so every decision is added.
pub fn replace(decisions: &[Decision], existing: &[Action]) -> Replacement {
    let mut left: Vec<&Action> =
        existing.iter().filter(|a| a.status != ActionStatus::Cancelled).collect();
    let mut out = Replacement::default();
    for d in decisions {
        match left.iter().position(|a| a.kind == d.kind && a.what == d.what) {
            Some(at) => {
                let a = left.remove(at);
                out.kept.push((a.id, (a.urgency != d.urgency).then_some(d.urgency)));
            }
            None => out.added.push(d.clone()),
        }
    }
    out.cancelled = left.iter().filter(|a| a.status.is_open()).map(|a| a.id).collect();
    out
}

/// A status change asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Forward along the chain (to `booked`, `done`, `result_received`, `closed`).
    To(ActionStatus),
    /// A result, with the move to `result_received`.
    Result(ActionResult),
    Cancel(String),
}

impl Change {
    /// Parses `status` with its `result` and `reason`: `result_received` needs a result
    /// (`422 result_required`), `cancelled` a reason (`422 reason_required`); a result
    /// with any other status is `422 unexpected_result`.
    pub fn parse(
        status: &str, result: Option<ActionResultRequest>, reason: Option<&str>,
    ) -> Result<Self, ParseError> {
        let status = ActionStatus::parse(status, "status")?;
        match (status, result) {
            (ActionStatus::ResultReceived, Some(r)) => Ok(Change::Result(r.try_into()?)),
            (ActionStatus::ResultReceived, None) => Err(ParseError::new(
                "result_required",
                "result",
                "recording a result needs its summary",
            )),
            (_, Some(_)) => Err(ParseError::new(
                "unexpected_result",
                "result",
                "a result is recorded with the status result_received",
            )),
            (ActionStatus::Cancelled, None) => {
                let reason = bounded_text(reason.unwrap_or(""), "reason", MAX_CANCEL_REASON, true)
                    .map_err(|e| match e.code {
                        "required" => {
                            ParseError::new("reason_required", "reason", "say why it is cancelled")
                        }
                        _ => e,
                    })?;
                Ok(Change::Cancel(reason))
            }
            (status, None) => Ok(Change::To(status)),
        }
    }

    pub fn status(&self) -> ActionStatus {
        match self {
            Change::To(s) => *s,
            Change::Result(_) => ActionStatus::ResultReceived,
            Change::Cancel(_) => ActionStatus::Cancelled,
        }
    }
}

/// Applies `change` to `action` at `now`: only forward along
/// `requested → booked → done → result_received → closed` (steps may be skipped: blood
/// tests taken in clinic are `done` at once, a referral has no result to record), or
/// `cancelled` from any open state. Anything else (back, the same status, out of
/// `closed` or `cancelled`) is `409 invalid_transition`.
pub fn transition(action: &Action, change: Change, now: DateTime<Utc>) -> Result<Action, Conflict> {
    let (from, to) = (action.status, change.status());
    let allowed = from.is_open() && (to == ActionStatus::Cancelled || to > from);
    if !allowed {
        return Err(Conflict::InvalidTransition { from: from.as_str(), to: to.as_str() });
    }
    let mut next = Action { status: to, updated_at: now, ..action.clone() };
    match change {
        Change::To(_) => {}
        Change::Result(result) => next.result = Some(result),
        Change::Cancel(reason) => next.cancel_reason = Some(reason),
    }
    Ok(next)
}

/// The action standing for each of `decisions` (of the latest version), by kind and
/// `what`: an action not cancelled first, else a cancelled one; each action used once.
pub fn statuses_for(decisions: &[Decision], actions: &[Action]) -> Vec<Option<ActionStatus>> {
    let mut used = vec![false; actions.len()];
    decisions
        .iter()
        .map(|d| {
            let fits = |i: &usize| {
                let a = &actions[*i];
                !used[*i] && a.kind == d.kind && a.what == d.what
            };
            let live = (0..actions.len())
                .filter(fits)
                .find(|i| actions[*i].status != ActionStatus::Cancelled);
            let at = live.or_else(|| (0..actions.len()).find(fits))?;
            used[at] = true;
            Some(actions[at].status)
        })
        .collect()
}

/// The list's order: overdue actions first, then by due date (then oldest first).
pub fn sort_for_list(actions: &mut [Action], today: NaiveDate) {
    actions.sort_by_key(|a| (!a.is_overdue(today), a.due_on, a.created_at, a.id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OutcomeRequest;

    fn body(investigations: serde_json::Value, referrals: serde_json::Value) -> OutcomeDraft {
        let r: OutcomeRequest = serde_json::from_value(serde_json::json!({
            "investigations": investigations, "referrals": referrals,
            "management_plan": { "text": "Plan" },
        }))
        .unwrap();
        OutcomeDraft::try_from(r).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-03-02T10:00:00Z".parse().unwrap()
    }

    fn action(d: &Decision, status: ActionStatus) -> Action {
        let a = Action::requested(
            Uuid::new_v4(),
            (Uuid::nil(), 1),
            d,
            UserId(Uuid::nil()),
            &DueDays::default(),
            now(),
        );
        Action { status, ..a }
    }

    #[test]
    fn decisions_name_vocabulary_only_and_due_dates_follow_urgency() {
        let b = body(
            serde_json::json!([{ "kind": "mri", "site": "lower back", "urgency": "urgent",
                                 "notes": "Hermione's old films" }]),
            serde_json::json!([{ "destination": "spinal_surgery", "urgency": "routine",
                                 "reason": "Mrs Quibble wants surgery" }]),
        );
        let ds = decisions(&b);
        assert_eq!(ds[0].what, "MRI (lower back)");
        assert_eq!(ds[1].what, "Referral: Spinal surgery");
        let a = action(&ds[0], ActionStatus::Requested);
        assert_eq!(a.due_on, "2026-03-16".parse::<NaiveDate>().unwrap());
        let zero = DueDays { urgent: 0, routine: 0 };
        assert_eq!(zero.due_on(Urgency::Routine, now().date_naive()), now().date_naive());
    }

    #[test]
    fn the_chain_goes_forward_and_cancels_from_open_states_only() {
        let d = &decisions(&body(
            serde_json::json!([{ "kind": "mri", "urgency": "urgent" }]),
            serde_json::json!([]),
        ))[0];
        let a = action(d, ActionStatus::Requested);
        let booked = transition(&a, Change::To(ActionStatus::Booked), now()).unwrap();
        let done = transition(&booked, Change::To(ActionStatus::Done), now()).unwrap();
        let result = ActionResult { summary: "L4/5 disc".into(), attachment_id: None };
        let got = transition(&done, Change::Result(result.clone()), now()).unwrap();
        assert_eq!((got.status, got.result), (ActionStatus::ResultReceived, Some(result)));
        let back = transition(&done, Change::To(ActionStatus::Booked), now()).unwrap_err();
        assert_eq!(back.code(), "invalid_transition");
        assert!(transition(&done, Change::To(ActionStatus::Done), now()).is_err());
        let closed = transition(&done, Change::To(ActionStatus::Closed), now()).unwrap();
        assert!(transition(&closed, Change::Cancel("no".into()), now()).is_err());
        let cancelled = transition(&a, Change::Cancel("patient declined".into()), now()).unwrap();
        assert_eq!(cancelled.cancel_reason.as_deref(), Some("patient declined"));
        assert!(transition(&cancelled, Change::To(ActionStatus::Booked), now()).is_err());
    }

    #[test]
    fn changes_need_their_result_or_reason() {
        let code =
            |s, r: Option<ActionResultRequest>, why| Change::parse(s, r, why).unwrap_err().code;
        assert_eq!(code("result_received", None, None), "result_required");
        assert_eq!(code("cancelled", None, Some("  ")), "reason_required");
        assert_eq!(code("finished", None, None), "invalid_status");
        let r = ActionResultRequest { summary: "ok".into(), attachment_id: None };
        assert_eq!(code("booked", Some(r), None), "unexpected_result");
        let r = ActionResultRequest { summary: "x".repeat(501), attachment_id: None };
        assert_eq!(code("result_received", Some(r), None), "too_long");
    }

    #[test]
    fn an_amendment_keeps_unchanged_cancels_removed_and_adds_new() {
        let old = decisions(&body(
            serde_json::json!([{ "kind": "mri", "urgency": "routine" }, { "kind": "bloods", "urgency": "routine" }]),
            serde_json::json!([{ "destination": "neurology", "urgency": "routine", "reason": "r" }]),
        ));
        let existing = vec![
            action(&old[0], ActionStatus::Booked),
            action(&old[1], ActionStatus::Closed),
            action(&old[2], ActionStatus::Requested),
        ];
        let new = decisions(&body(
            serde_json::json!([{ "kind": "mri", "urgency": "urgent" }]),
            serde_json::json!([{ "destination": "pain_clinic", "urgency": "routine", "reason": "r" }]),
        ));
        let r = replace(&new, &existing);
        assert_eq!(r.kept, vec![(existing[0].id, Some(Urgency::Urgent))]);
        assert_eq!(r.cancelled, vec![existing[2].id]);
        assert_eq!(r.added, vec![new[1].clone()]);
    }

    #[test]
    fn overdue_first_then_by_due_date() {
        let d = &decisions(&body(
            serde_json::json!([{ "kind": "ct", "urgency": "routine" }]),
            serde_json::json!([]),
        ))[0];
        let today: NaiveDate = "2026-05-01".parse().unwrap();
        let mut late = action(d, ActionStatus::Booked);
        late.due_on = "2026-04-01".parse().unwrap();
        let mut closed_late = action(d, ActionStatus::Closed);
        closed_late.due_on = "2026-03-01".parse().unwrap();
        let mut soon = action(d, ActionStatus::Requested);
        soon.due_on = "2026-05-02".parse().unwrap();
        let mut list = vec![soon.clone(), closed_late.clone(), late.clone()];
        sort_for_list(&mut list, today);
        assert_eq!(list, vec![late, closed_late, soon]);
    }
}

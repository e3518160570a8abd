//! The messages the service sends. They address staff only and carry no patient
//! identifiers: a case is described by body site and urgency, never by NHS number or name.

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, EventLike, Property};

use crate::domain::outcome::{FollowUpKind, OutcomeSummary};
use crate::domain::schedule::CLINIC_TZ;
use crate::domain::triage::ReturnReason;
use crate::domain::{Case, EmailAddress, NewCase, NewMessage, OutcomeVersion, PersonName, Session};

/// `Tuesday 1 December 2026 at 12:30` in clinic local time.
fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&CLINIC_TZ).format("%A %-d %B %Y at %H:%M").to_string()
}

/// To the referrer when a case is booked.
pub fn booking_confirmation(
    referrer: &EmailAddress, session: &Session, case: &NewCase,
) -> NewMessage {
    NewMessage {
        to: vec![referrer.clone()],
        subject: format!("Case booked: {} on {}", session.plan.title, local(session.starts_at)),
        body: format!(
            "Your {} case ({}) is booked for discussion at {} on {} (UK time).\n\n\
             Case reference: {}\n\n\
             This email contains no patient details. Sign in to MDT Coordinator to see the case.\n",
            case.urgency.as_str(),
            case.body_site.as_str(),
            session.plan.title,
            local(session.starts_at),
            case.id,
        ),
        html: None,
        calendar: None,
    }
}

/// The iCalendar invitation for a session: `METHOD:REQUEST`, a UID stable for the
/// session (so updates replace the same calendar entry), times in UTC.
pub fn invitation(
    session: &Session, organizer: &EmailAddress, attendees: &[EmailAddress],
) -> String {
    invitation_version(session, organizer, attendees, 0, Method::Request)
}

/// What an iCalendar message asks of the calendar: add or update the entry, or remove it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Request,
    Cancel,
}

/// A sequence that grows with time, so each update outranks the one before.
fn next_sequence() -> u32 {
    u32::try_from(Utc::now().timestamp() / 60).unwrap_or(u32::MAX)
}

/// The invitation as revision `sequence` (iCalendar `SEQUENCE`): a calendar replaces an
/// entry with the same UID by one with a higher sequence, and removes it for a
/// `METHOD:CANCEL` (RFC 5546).
fn invitation_version(
    session: &Session, organizer: &EmailAddress, attendees: &[EmailAddress], sequence: u32,
    method: Method,
) -> String {
    let end =
        session.starts_at + chrono::Duration::minutes(i64::from(session.plan.duration_minutes));
    let mut event = icalendar::Event::new();
    event
        .uid(&format!("session-{}@mdt-coordinator", session.id))
        .sequence(sequence)
        .summary(&session.plan.title)
        .starts(session.starts_at)
        .ends(end)
        .timestamp(Utc::now())
        .location("MDT Coordinator (online)")
        .append_property(Property::new("ORGANIZER", format!("mailto:{organizer}")));
    for a in attendees {
        event.append_multi_property(Property::new("ATTENDEE", format!("mailto:{a}")));
    }
    if method == Method::Cancel {
        event.status(icalendar::EventStatus::Cancelled);
    }
    let mut calendar = Calendar::new();
    let method = if method == Method::Cancel { "CANCEL" } else { "REQUEST" };
    calendar.append_property(Property::new("METHOD", method));
    calendar.push(event.done());
    calendar.done().to_string()
}

/// To the chair and everyone invited when the agenda is published.
pub fn agenda_published(
    session: &Session, cases: usize, organizer: &EmailAddress, to: Vec<EmailAddress>,
) -> NewMessage {
    NewMessage {
        subject: format!(
            "Agenda published: {} on {}",
            session.plan.title,
            local(session.starts_at)
        ),
        body: format!(
            "The agenda for {} on {} (UK time) is published with {} case{}.\n\n\
             The calendar invitation is attached. Sign in to MDT Coordinator to see the agenda.\n",
            session.plan.title,
            local(session.starts_at),
            cases,
            if cases == 1 { "" } else { "s" },
        ),
        html: None,
        calendar: Some(invitation(session, organizer, &to)),
        to,
    }
}

/// To everyone invited to a published session when a coordinator moves it: the updated
/// invitation replaces the calendar entry (same UID, a sequence that grows with time).
pub fn session_moved(
    session: &Session, from: DateTime<Utc>, organizer: &EmailAddress, to: Vec<EmailAddress>,
) -> NewMessage {
    let sequence = next_sequence();
    NewMessage {
        subject: format!("Session moved: {} now on {}", session.plan.title, local(session.starts_at)),
        body: format!(
            "{} has moved from {} to {} (UK time).\n\n\
             The updated calendar invitation is attached. Sign in to MDT Coordinator to see the agenda.\n",
            session.plan.title,
            local(from),
            local(session.starts_at),
        ),
        html: None,
        calendar: Some(invitation_version(session, organizer, &to, sequence, Method::Request)),
        to,
    }
}

/// To everyone invited to a published session when a coordinator cancels it: the
/// cancellation removes the calendar entry (same UID, `METHOD:CANCEL`).
pub fn session_cancelled(
    session: &Session, organizer: &EmailAddress, to: Vec<EmailAddress>,
) -> NewMessage {
    let body = format!(
        "{} on {} (UK time) has been cancelled.\n\n\
         The attached cancellation removes it from your calendar. Referrers are told \
         separately where each case has gone.\n",
        session.plan.title,
        local(session.starts_at),
    );
    calendar_message(session, organizer, to, "Session cancelled", body, Method::Cancel)
}

/// To someone invited to a session that is already published: the calendar invitation
/// (same UID as everyone's, a sequence that grows with time, so it also outranks an
/// earlier withdrawal's cancellation).
pub fn invited(session: &Session, organizer: &EmailAddress, to: EmailAddress) -> NewMessage {
    let body = format!(
        "You are invited to {} on {} (UK time).\n\n\
         The calendar invitation is attached. Sign in to MDT Coordinator to join the meeting.\n",
        session.plan.title,
        local(session.starts_at),
    );
    calendar_message(session, organizer, vec![to], "Invitation", body, Method::Request)
}

/// To someone whose invitation to a published session is withdrawn: the cancellation
/// removes the calendar entry (same UID, `METHOD:CANCEL`); the meeting itself goes on.
pub fn invitation_withdrawn(
    session: &Session, organizer: &EmailAddress, to: EmailAddress,
) -> NewMessage {
    let body = format!(
        "Your invitation to {} on {} (UK time) has been withdrawn.\n\n\
         The attached cancellation removes it from your calendar.\n",
        session.plan.title,
        local(session.starts_at),
    );
    calendar_message(session, organizer, vec![to], "Invitation withdrawn", body, Method::Cancel)
}

/// A message carrying the session's calendar entry (its UID, the next sequence):
/// "`what`: title on date" as the subject.
fn calendar_message(
    session: &Session, organizer: &EmailAddress, to: Vec<EmailAddress>, what: &str, body: String,
    method: Method,
) -> NewMessage {
    NewMessage {
        subject: format!("{what}: {} on {}", session.plan.title, local(session.starts_at)),
        body,
        html: None,
        calendar: Some(invitation_version(session, organizer, &to, next_sequence(), method)),
        to,
    }
}

/// To the referrer when their case moves to another session (by them, a coordinator, or a
/// cancellation).
pub fn case_moved(
    referrer: &EmailAddress, case_id: uuid::Uuid, from: &Session, to: &Session, why: &str,
) -> NewMessage {
    NewMessage {
        to: vec![referrer.clone()],
        subject: format!("Case moved to {} on {}", to.plan.title, local(to.starts_at)),
        body: format!(
            "{why}\n\nYour case (reference {case_id}) was on {} on {} and is now booked for {} on {} (UK time).\n\n\
             This email contains no patient details. Sign in to MDT Coordinator to see the case.\n",
            from.plan.title,
            local(from.starts_at),
            to.plan.title,
            local(to.starts_at),
        ),
        html: None,
        calendar: None,
    }
}

/// To the referrer when their session is cancelled and no later session could take the
/// case.
pub fn rebooking_needed(
    referrer: &EmailAddress, case_id: uuid::Uuid, session: &Session,
) -> NewMessage {
    NewMessage {
        to: vec![referrer.clone()],
        subject: format!("Session cancelled: {} on {} - please rebook", session.plan.title, local(session.starts_at)),
        body: format!(
            "{} on {} (UK time) has been cancelled and no later session in the series had room for your case \
             (reference {case_id}). Please book it into another session.\n\n\
             This email contains no patient details. Sign in to MDT Coordinator to see the case.\n",
            session.plan.title,
            local(session.starts_at),
        ),
        html: None,
        calendar: None,
    }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The decisions of an outcome as lines of plain text (no free text: kinds, sites,
/// urgencies, destinations and the follow-up only).
fn decision_lines(
    summary: &OutcomeSummary, follow_up_session: Option<&Session>,
) -> (Vec<String>, Vec<String>, String, String) {
    let investigations = summary
        .investigations
        .iter()
        .map(|i| match &i.site {
            Some(site) => format!("{} ({}), {}", i.kind.label(), site.as_str(), i.urgency.as_str()),
            None => format!("{}, {}", i.kind.label(), i.urgency.as_str()),
        })
        .collect();
    let referrals = summary
        .referrals
        .iter()
        .map(|r| format!("{}, {}", r.destination.label(), r.urgency.as_str()))
        .collect();
    let plan = match summary.plan_items {
        0 => "written in MDT Coordinator".to_string(),
        1 => "1 action, written in MDT Coordinator".to_string(),
        n => format!("{n} actions, written in MDT Coordinator"),
    };
    let follow_up = match (summary.follow_up.kind, follow_up_session) {
        (FollowUpKind::None, _) => "none".to_string(),
        (FollowUpKind::Review, _) => format!(
            "review in {} week{}",
            summary.follow_up.weeks.unwrap_or(0),
            if summary.follow_up.weeks == Some(1) { "" } else { "s" }
        ),
        (FollowUpKind::ReDiscuss, Some(s)) if Some(s.id) == summary.follow_up.session_id => {
            format!(
                "discuss again at {} on {} (UK time); a follow-up case is booked",
                s.plan.title,
                local(s.starts_at)
            )
        }
        (FollowUpKind::ReDiscuss, _) => {
            "discuss again at a later MDT; a follow-up case is booked".to_string()
        }
    };
    (investigations, referrals, plan, follow_up)
}

/// The session a case was discussed at, and when the discussion really took place
/// (`domain::live::discussed_at`), which is what letters state.
#[derive(Clone, Copy)]
pub struct Discussed<'a> {
    pub session: &'a Session,
    pub at: DateTime<Utc>,
}

/// Triage returned the referrer's booking as not ready: the reason (from the fixed list)
/// and what to do; no patient details (the triager's note is shown only in the app).
pub fn case_returned(
    referrer: &EmailAddress, case_id: uuid::Uuid, session: &Session, reason: ReturnReason,
) -> NewMessage {
    NewMessage {
        to: vec![referrer.clone()],
        subject: format!("Booking returned: {} on {}", session.plan.title, local(session.starts_at)),
        body: format!(
            "Your booking for {} on {} (UK time) was returned as not ready (reference {case_id}).\n\n\
             Reason: {}.\n\n\
             Open My cases to read the note, edit the booking and resubmit it before the session's \
             cut-off; the patient's waiting time still counts from the referral date.\n\n\
             This email contains no patient details.\n",
            session.plan.title,
            local(session.starts_at),
            reason.as_str().replace('_', " "),
        ),
        html: None,
        calendar: None,
    }
}

/// An urgent case the chair approved was added to a published agenda: each invitee is
/// told (no patient details).
pub fn agenda_changed(session: &Session, to: EmailAddress) -> NewMessage {
    NewMessage {
        to: vec![to],
        subject: format!("Agenda changed: {} on {}", session.plan.title, local(session.starts_at)),
        body: format!(
            "The chair has added an urgent case to the published agenda of {} on {} (UK time).\n\n\
             This email contains no patient details. Sign in to MDT Coordinator to see the agenda.\n",
            session.plan.title,
            local(session.starts_at),
        ),
        html: None,
        calendar: None,
    }
}

/// To the referrer when a case's outcome is signed, or (`amended`) when a signed outcome
/// is corrected. Like every message it carries no patient identifiers and none of the
/// outcome's free text: the case reference, body site and urgency, the decisions, who
/// signed and when. `follow_up_session` names the session of a re-discussion.
pub fn outcome_letter(
    referrer: &EmailAddress, discussed: Discussed<'_>, case: &Case, version: &OutcomeVersion,
    signer: &PersonName, follow_up_session: Option<&Session>, amended: bool,
) -> NewMessage {
    let summary = version.body.summary();
    let (investigations, referrals, plan, follow_up) = decision_lines(&summary, follow_up_session);
    let session = discussed.session;
    let when = local(discussed.at);
    let signed_at = version.signed_at.map(local).unwrap_or_default();
    let subject = format!(
        "{}MDT outcome: {} on {when}",
        if amended { "Amended " } else { "" },
        session.plan.title
    );
    let intro = if amended {
        format!(
            "The MDT outcome for your case, discussed at {} on {when} (UK time), has been amended: \
             version {} replaces version {}.",
            session.plan.title,
            version.version,
            version.supersedes.unwrap_or(0)
        )
    } else {
        format!(
            "The MDT outcome for your case, discussed at {} on {when} (UK time), has been signed.",
            session.plan.title
        )
    };
    let case_line =
        format!("{} case, {}", capitalise(case.urgency.as_str()), case.body_site.as_str());
    let list = |items: &[String]| {
        if items.is_empty() {
            "  - none\n".to_string()
        } else {
            items.iter().map(|i| format!("  - {i}\n")).collect()
        }
    };
    let signed = format!("Signed by {} on {signed_at} (UK time).", signer.as_str());
    const CLOSING: &str =
        "This email contains no patient details and none of the outcome's notes. \
                           Sign in to MDT Coordinator to read the full plan and notes.";
    let body = format!(
        "{intro}\n\n\
         Case reference: {}\n\
         Case: {case_line}\n\
         Outcome version: {}\n\n\
         Investigations:\n{}\n\
         Referrals:\n{}\n\
         Management plan: {plan}\n\
         Follow-up: {follow_up}\n\n\
         {signed}\n\n\
         {CLOSING}\n",
        case.id,
        version.version,
        list(&investigations),
        list(&referrals),
    );
    let html_list = |items: &[String]| {
        if items.is_empty() {
            "<p>None.</p>".to_string()
        } else {
            let lis: String = items.iter().map(|i| format!("<li>{}</li>", escape(i))).collect();
            format!("<ul>{lis}</ul>")
        }
    };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en-GB\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n\
         <p>{}</p>\n\
         <table>\n\
         <tr><th scope=\"row\">Case reference</th><td>{}</td></tr>\n\
         <tr><th scope=\"row\">Case</th><td>{}</td></tr>\n\
         <tr><th scope=\"row\">Outcome version</th><td>{}</td></tr>\n\
         </table>\n\
         <h2>Investigations</h2>\n{}\n\
         <h2>Referrals</h2>\n{}\n\
         <h2>Management plan</h2>\n<p>{}</p>\n\
         <h2>Follow-up</h2>\n<p>{}</p>\n\
         <p>{}</p>\n\
         <p>{}</p>\n\
         </body></html>\n",
        escape(&subject),
        escape(&intro),
        escape(&case.id.to_string()),
        escape(&case_line),
        version.version,
        html_list(&investigations),
        html_list(&referrals),
        escape(&capitalise(&plan)),
        escape(&capitalise(&follow_up)),
        escape(&signed),
        escape(CLOSING),
    );
    NewMessage { to: vec![referrer.clone()], subject, body, html: Some(html), calendar: None }
}

/// The email carrying a letter (`kind` `gp` or `patient`) as a PDF attachment, only ever
/// to an address on a secure domain. The body still names no patient: the PDF does.
pub fn letter_attached(
    to: &EmailAddress, kind: crate::domain::letter::LetterKind, case: &Case, version: u32,
    amended: bool,
) -> NewMessage {
    use crate::domain::letter::LetterKind;
    let what = match kind {
        LetterKind::Gp => "MDT clinic letter",
        LetterKind::Patient => "Copy of the patient's MDT letter",
    };
    let subject = format!("{}{what}", if amended { "Amended " } else { "" });
    let body = format!(
        "Attached: the {} (outcome version {version}) for case reference {}.\n\n\
         The attachment identifies the patient; this address is on a secure domain.\n",
        what.to_lowercase(),
        case.id
    );
    NewMessage { to: vec![to.clone()], subject, body, html: None, calendar: None }
}

/// To a GP practice without a secure address: a letter is waiting (no identifiers); it
/// comes by post.
pub fn letter_waiting(to: &EmailAddress, case: &Case) -> NewMessage {
    let subject = "An MDT clinic letter is on its way by post".to_string();
    let body = format!(
        "A multidisciplinary team meeting has signed an outcome for one of your practice's \
         patients (case reference {}).\n\n\
         The clinic letter names the patient, so it is not sent to this address: it will \
         arrive by post. To receive letters by email, give MDT Coordinator's coordinators an \
         address on a secure domain.\n",
        case.id
    );
    NewMessage { to: vec![to.clone()], subject, body, html: None, calendar: None }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::SessionPlan;
    use crate::domain::{
        BodySite, CaseState, ClinicalText, NhsNumber, OdsCode, OutcomeDraft, PatientDetails,
        SessionState, Sex, Specialty, Urgency, UserId,
    };
    use chrono::TimeZone;

    fn a_session(title: &str, starts_at: DateTime<Utc>) -> Session {
        Session {
            id: uuid::Uuid::new_v4(),
            series_id: None,
            plan: SessionPlan {
                specialty: Specialty::parse("rheumatology").unwrap(),
                title: title.to_string(),
                duration_minutes: 90,
                case_capacity: 8,
                minutes_per_case: 10,
                booking_cutoff_hours: 48,
                chair_id: UserId::new(),
                teaching: false,
            },
            starts_at,
            booked: 1,
            state: SessionState::Published,
        }
    }

    #[test]
    fn outcome_letter_names_decisions_but_no_patient_or_free_text() {
        let starts = Utc.with_ymd_and_hms(2026, 12, 1, 12, 30, 0).unwrap();
        let session = a_session("Rheumatology <MDT> & teaching", starts);
        let later = a_session("Rheumatology MDT", starts + chrono::Duration::weeks(2));
        let case = Case {
            id: uuid::Uuid::new_v4(),
            session_id: session.id,
            referrer_id: UserId::new(),
            patient: PatientDetails {
                nhs_number: NhsNumber::parse("9434765919").unwrap(),
                given_name: PersonName::parse("Hermione").unwrap(),
                family_name: PersonName::parse("Quibble").unwrap(),
                date_of_birth: chrono::NaiveDate::from_ymd_opt(1978, 5, 17).unwrap(),
                sex: Sex::Female,
                gp_practice_code: OdsCode::parse("A81001").unwrap(),
            },
            clinical_question: ClinicalText::parse("Question", "q").unwrap(),
            history: ClinicalText::parse("History", "h").unwrap(),
            urgency: Urgency::Urgent,
            body_site: BodySite::parse("left knee").unwrap(),
            free_text_identifies_patient: true,
            state: CaseState::OutcomeSigned,
            booked_at: starts,
            moved_from: None,
            needs_rebooking: false,
            follow_up_of: None,
            proforma: None,
            submitted_at: None,
            returned: None,
            standard_plan: None,
        };
        let body: OutcomeDraft = serde_json::from_value(serde_json::json!({
            "investigations": [{"kind": "xray", "site": "left knee", "urgency": "routine", "notes": "weight-bearing views"}],
            "referrals": [],
            "management_plan": {"text": "Secret plan", "items": ["Start methotrexate", "Book hydrotherapy"]},
            "follow_up": {"kind": "re_discuss", "session_id": later.id, "reason": "with films"},
        }))
        .unwrap();
        let version = OutcomeVersion {
            case_id: case.id,
            version: 1,
            body,
            author_id: UserId::new(),
            created_at: starts,
            updated_at: starts,
            signed_by: Some(UserId::new()),
            signed_at: Some(starts + chrono::Duration::minutes(20)),
            amendment_reason: None,
            supersedes: None,
            outside_meeting_reason: None,
        };
        let to = EmailAddress::parse("physio@example.org").unwrap();
        let signer = PersonName::parse("Dr Ada O'Neill").unwrap();
        let at = |session| Discussed { session, at: starts };
        let m = outcome_letter(&to, at(&session), &case, &version, &signer, Some(&later), false);
        assert_eq!(
            m.subject,
            "MDT outcome: Rheumatology <MDT> & teaching on Tuesday 1 December 2026 at 12:30"
        );
        let html = m.html.as_deref().unwrap();
        for part in [m.body.as_str(), html] {
            assert!(part.contains(&case.id.to_string()));
            assert!(part.contains("X-ray (left knee), routine"));
            assert!(part.contains("2 actions"));
            assert!(part.contains("Tuesday 15 December 2026 at 12:30"));
            assert!(part.contains("at 12:50"), "signed time in UK time: {part}");
            for secret in [
                "9434765919",
                "Hermione",
                "Quibble",
                "1978",
                "weight-bearing",
                "Secret plan",
                "with films",
                "methotrexate",
                "hydrotherapy",
                "Question",
                "History",
            ] {
                assert!(!part.contains(secret), "{secret} in {part}");
            }
        }
        assert!(m.body.contains("Signed by Dr Ada O'Neill"));
        assert!(html.contains("Rheumatology &lt;MDT&gt; &amp; teaching"));
        assert!(html.contains("Dr Ada O&#39;Neill"));
        assert!(!html.contains("<MDT>"));
        let amended = outcome_letter(&to, at(&session), &case, &version, &signer, None, true);
        assert!(amended.subject.starts_with("Amended MDT outcome: "));
        assert!(amended.body.contains("discuss again at a later MDT"));
        // A meeting held 19 days before its scheduled date: the letter gives the real one.
        let early = Discussed { session: &session, at: starts - chrono::Duration::days(19) };
        let m = outcome_letter(&to, early, &case, &version, &signer, None, false);
        assert!(m.subject.ends_with("on Thursday 12 November 2026 at 12:30"), "{}", m.subject);
        assert!(
            m.body.contains("teaching on Thursday 12 November 2026 at 12:30 (UK time)"),
            "{}",
            m.body
        );
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape(r#"<b>"Tom" & 'Jerry'</b>"#),
            "&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
    }
}

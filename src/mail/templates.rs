//! The messages the service sends. They address staff only and carry no patient
//! identifiers: a case is described by body site and urgency, never by NHS number or name.

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, EventLike, Property};

use crate::domain::schedule::CLINIC_TZ;
use crate::domain::{EmailAddress, NewCase, NewMessage, Session};

/// `Tuesday 1 December 2026 at 12:30` in clinic local time.
fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&CLINIC_TZ)
        .format("%A %-d %B %Y at %H:%M")
        .to_string()
}

/// To the referrer when a case is booked.
pub fn booking_confirmation(
    referrer: &EmailAddress,
    session: &Session,
    case: &NewCase,
) -> NewMessage {
    NewMessage {
        to: vec![referrer.clone()],
        subject: format!(
            "Case booked: {} on {}",
            session.plan.title,
            local(session.starts_at)
        ),
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
        calendar: None,
    }
}

/// The iCalendar invitation for a session: `METHOD:REQUEST`, a UID stable for the
/// session (so updates replace the same calendar entry), times in UTC.
pub fn invitation(
    session: &Session,
    organizer: &EmailAddress,
    attendees: &[EmailAddress],
) -> String {
    let end =
        session.starts_at + chrono::Duration::minutes(i64::from(session.plan.duration_minutes));
    let mut event = icalendar::Event::new();
    event
        .uid(&format!("session-{}@mdt-coordinator", session.id))
        .summary(&session.plan.title)
        .starts(session.starts_at)
        .ends(end)
        .timestamp(Utc::now())
        .location("MDT Coordinator (online)")
        .append_property(Property::new("ORGANIZER", format!("mailto:{organizer}")));
    for a in attendees {
        event.append_multi_property(Property::new("ATTENDEE", format!("mailto:{a}")));
    }
    let mut calendar = Calendar::new();
    calendar.append_property(Property::new("METHOD", "REQUEST"));
    calendar.push(event.done());
    calendar.done().to_string()
}

/// To the chair and everyone invited when the agenda is published.
pub fn agenda_published(
    session: &Session,
    cases: usize,
    organizer: &EmailAddress,
    to: Vec<EmailAddress>,
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
        calendar: Some(invitation(session, organizer, &to)),
        to,
    }
}

/// To the referrer when their case moves to another session (by them, a coordinator, or a
/// cancellation).
pub fn case_moved(
    referrer: &EmailAddress,
    case_id: uuid::Uuid,
    from: &Session,
    to: &Session,
    why: &str,
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
        calendar: None,
    }
}

/// To the referrer when their session is cancelled and no later session could take the
/// case.
pub fn rebooking_needed(
    referrer: &EmailAddress,
    case_id: uuid::Uuid,
    session: &Session,
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
        calendar: None,
    }
}

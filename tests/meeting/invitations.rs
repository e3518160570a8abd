//! Invitations and guests against the real server: a practitioner invited without a case
//! joins and their minutes reach their CPD record, while an uninvited one is refused; a
//! guest neurologist waits in the lobby, is let in by the chair and still may not decide
//! (REST `403`, live `forbidden`); a guest turned away stays out; and a published
//! session's invitees get the calendar invitation and, on withdrawal, its cancellation
//! with the same UID (parsed with an iCalendar library).

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use mdt_coordinator::domain::live::{EventBody, NewLiveEvent};
use mdt_coordinator::domain::Role;

use crate::common::clinic::{expect, nhs_numbers, referral, Account, Clinic};
use crate::common::{Backend, PASSWORD};
use crate::live::{command, connect, quiet, recv, until, Ws};
use crate::on_both_backends;

/// The one place a case reaches the agenda (bookings are to go through triage; accept
/// it here when they do).
async fn case_on_agenda(c: &Clinic, session: &str) -> String {
    c.book_case(&c.physio, session, referral(&nhs_numbers(1)[0])).await
}

async fn invite(
    c: &Clinic, by: &Account, session: &str, who: &str, kind: &str,
) -> (StatusCode, Value) {
    let path = format!("/api/sessions/{session}/invitations");
    c.app.post(&by.token, &path, json!({ "user_id": who, "kind": kind })).await
}

async fn withdraw(c: &Clinic, by: &Account, session: &str, who: &Account) -> StatusCode {
    let path = format!("/api/sessions/{session}/invitations/{}", who.id);
    c.app.send(reqwest::Method::DELETE, &by.token, &path, None).await.0
}

async fn ticket(c: &Clinic, who: &Account, session: &str) -> (StatusCode, Value) {
    c.app.post(&who.token, &format!("/api/sessions/{session}/live-ticket"), json!({})).await
}

async fn join(c: &Clinic, who: &Account, session: &str) -> Ws {
    let body = expect(StatusCode::CREATED, ticket(c, who, session).await);
    let ticket = body["ticket"].as_str().unwrap();
    let url = format!(
        "{}/api/sessions/{session}/live?ticket={ticket}",
        c.app.base.replace("http://", "ws://")
    );
    connect(&url, &c.app.base).await.expect("live channel opens")
}

/// A specialty of its own and a consultant of it, made by the coordinator over HTTP
/// with an organisation, and signed in.
async fn neurologist(c: &Clinic) -> Account {
    let specialty = json!({ "slug": "neurology", "name": "Neurology" });
    expect(
        StatusCode::CREATED,
        c.app.post(&c.coordinator.token, "/api/specialties", specialty).await,
    );
    let account = json!({
        "email": "neuro@example.org", "name": "Dr Nora Neuro", "role": "consultant",
        "specialties": ["neurology"], "password": PASSWORD,
        "organisation": "  Northern Neuroscience Centre ",
    });
    let body =
        expect(StatusCode::CREATED, c.app.post(&c.coordinator.token, "/api/users", account).await);
    assert_eq!(body["organisation"], "Northern Neuroscience Centre", "{body}");
    let long = json!({
        "email": "long@example.org", "name": "Long Org", "role": "consultant",
        "specialties": ["neurology"], "password": PASSWORD, "organisation": "x".repeat(121),
    });
    let (status, refused) = c.app.post(&c.coordinator.token, "/api/users", long).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_long"))
    );
    let login = json!({ "email": "neuro@example.org", "password": PASSWORD });
    let res = c.app.http.post(c.app.url("/api/auth/login")).json(&login).send().await.unwrap();
    let token: Value = res.json().await.unwrap();
    Account {
        token: token["access_token"].as_str().unwrap().to_string(),
        id: body["id"].as_str().unwrap().to_string(),
    }
}

fn outcome() -> Value {
    json!({
        "investigations": [{ "kind": "mri", "site": "lower back", "urgency": "routine" }],
        "referrals": [],
        "management_plan": { "text": "Continue physiotherapy and review with the MRI." },
        "follow_up": { "kind": "none" },
    })
}

async fn an_invited_learner_joins_and_their_minutes_reach_their_cpd_record(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let learner =
        c.account("learner@example.org", "Lee Learner", Role::Practitioner, c.specialty).await;
    // Uninvited, a practitioner with no case on the agenda neither joins nor sees it.
    let (status, body) = ticket(&c, &learner, &session).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("not_a_participant")));
    let shown = expect(
        StatusCode::OK,
        c.app.get(&learner.token, &format!("/api/sessions/{session}")).await,
    );
    assert!(shown["agenda"].is_null(), "{shown}");

    // Only the chair or a coordinator invites.
    let (status, body) = invite(&c, &c.physio, &session, &learner.id, "learner").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    let body =
        expect(StatusCode::CREATED, invite(&c, &c.chair, &session, &learner.id, "learner").await);
    assert_eq!(
        (body["kind"].as_str(), body["name"].as_str()),
        (Some("learner"), Some("Lee Learner"))
    );
    assert_eq!(body["role"], "practitioner");
    let (status, body) = invite(&c, &c.coordinator, &session, &learner.id, "learner").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("already_invited")));
    let path = format!("/api/sessions/{session}/invitations");
    let list = expect(StatusCode::OK, c.app.get(&c.coordinator.token, &path).await);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["user_id"], learner.id.as_str());
    assert!(list[0].get("email").is_none(), "{list}");
    assert_eq!(c.app.get(&c.physio.token, &path).await.0, StatusCode::FORBIDDEN);
    let audit = c.app.state.store.audit_events().await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "invitation_sent" && e.details.to_string().contains(&learner.id)));

    // Invited, they see the agenda identified and join the meeting.
    case_on_agenda(&c, &session).await;
    let shown = expect(
        StatusCode::OK,
        c.app.get(&learner.token, &format!("/api/sessions/{session}")).await,
    );
    assert!(shown["agenda"].to_string().contains("Hermione"), "{shown}");
    let mut chair = join(&c, &c.chair, &session).await;
    until(&mut chair, "snapshot").await;
    let mut ws = join(&c, &learner, &session).await;
    let snap = until(&mut ws, "snapshot").await;
    assert_eq!(snap["you"]["user_id"], learner.id.as_str());
    assert_eq!(snap["agenda"].as_array().unwrap().len(), 1);
    until(&mut chair, "participant_joined").await;
    let opened = command(&mut chair, "o1", json!({ "kind": "open_meeting" })).await;
    assert_eq!(opened["type"], "ack", "{opened}");
    until(&mut ws, "meeting_opened").await;
    drop(ws);
    let left = until(&mut chair, "participant_left").await;
    assert_eq!(left["event"]["user_id"], learner.id.as_str());

    // That stay lasted seconds; a later one of forty minutes is recorded as the meeting
    // records stays (through another instance, alive, so the room leaves it be), and both
    // are in the learner's CPD record.
    let store = c.app.state.store.clone();
    let instance = uuid::Uuid::new_v4();
    store.live_heartbeat(instance).await.unwrap();
    let sid = session.parse().unwrap();
    let at = Utc::now() + Duration::hours(1);
    let stay = |body| NewLiveEvent { body, actor: Some(learner.uid()), command_id: None };
    let joined = EventBody::ParticipantJoined {
        user_id: learner.uid(),
        name: "Lee Learner".into(),
        role: Role::Practitioner,
        instance,
    };
    store.append_live_events(sid, None, vec![stay(joined)], at).await.unwrap();
    let left = EventBody::ParticipantLeft { user_id: learner.uid() };
    store
        .append_live_events(sid, None, vec![stay(left)], at + Duration::minutes(40))
        .await
        .unwrap();
    let record = expect(StatusCode::OK, c.app.get(&learner.token, "/api/me/attendance").await);
    let sessions = record["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{record}");
    assert_eq!(sessions[0]["session_id"], session.as_str());
    assert_eq!(sessions[0]["role"], "practitioner");
    assert!(sessions[0]["minutes_present"].as_u64().unwrap() >= 40, "{record}");
    assert!(record["total_minutes"].as_u64().unwrap() >= 40, "{record}");
}

async fn a_guest_waits_in_the_lobby_and_may_not_decide(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let case = case_on_agenda(&c, &session).await;
    let guest = neurologist(&c).await;
    // Not yet invited: a consultant of another specialty does not join.
    assert_eq!(ticket(&c, &guest, &session).await.0, StatusCode::FORBIDDEN);

    // Who is a guest, a learner or a trainee is checked.
    let refusals = [
        (&c.second_consultant.id, "guest", StatusCode::UNPROCESSABLE_ENTITY, "not_a_guest"),
        (&guest.id, "learner", StatusCode::UNPROCESSABLE_ENTITY, "invalid_invitee"),
        (&c.trainee.id, "trainee", StatusCode::CONFLICT, "not_a_teaching_session"),
        (&guest.id, "observer", StatusCode::UNPROCESSABLE_ENTITY, "invalid_kind"),
    ];
    for (who, kind, status, code) in refusals {
        let (got, body) = invite(&c, &c.chair, &session, who, kind).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{kind}: {body}");
    }
    let nobody = uuid::Uuid::new_v4().to_string();
    let (got, body) = invite(&c, &c.chair, &session, &nobody, "guest").await;
    assert_eq!(
        (got, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_user"))
    );
    let body =
        expect(StatusCode::CREATED, invite(&c, &c.chair, &session, &guest.id, "guest").await);
    assert_eq!(body["organisation"], "Northern Neuroscience Centre");

    let mut chair = join(&c, &c.chair, &session).await;
    until(&mut chair, "snapshot").await;
    assert_eq!(command(&mut chair, "o1", json!({ "kind": "open_meeting" })).await["type"], "ack");

    // The guest waits in the lobby: no agenda, no people, no commands, no media.
    let mut ws = join(&c, &guest, &session).await;
    let first = recv(&mut ws).await;
    assert_eq!(first["type"], "lobby", "{first}");
    assert!(first.get("agenda").is_none() && !first.to_string().contains("Hermione"), "{first}");
    let waiting = until(&mut chair, "lobby_waiting").await;
    let event = &waiting["event"];
    assert_eq!(event["user_id"], guest.id.as_str());
    assert_eq!(event["name"], "Dr Nora Neuro");
    assert_eq!(event["role"], "consultant");
    assert_eq!(event["organisation"], "Northern Neuroscience Centre");
    let refused = command(&mut ws, "g1", json!({ "kind": "raise_hand" })).await;
    assert_eq!(refused["code"], "in_lobby", "{refused}");
    let offer = json!({ "type": "rtc", "kind": "offer", "sdp": "v=0" });
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(offer.to_string())).await.unwrap();
    assert_eq!(recv(&mut ws).await["code"], "in_lobby");
    // Others joining are not shown to the waiting guest; they see who waits.
    let mut colleague = join(&c, &c.second_consultant, &session).await;
    let snap = until(&mut colleague, "snapshot").await;
    assert_eq!(snap["lobby"][0]["organisation"], "Northern Neuroscience Centre", "{snap}");
    assert_eq!(snap["lobby"][0]["name"], "Dr Nora Neuro");
    assert!(quiet(&mut ws).await, "nothing reaches the lobby");
    let admit = json!({ "kind": "admit", "user_id": guest.id });
    assert_eq!(command(&mut colleague, "c1", admit.clone()).await["code"], "forbidden");

    // Let in, the guest gets the meeting, identified, and is a participant.
    assert_eq!(command(&mut chair, "a1", admit.clone()).await["type"], "ack");
    let snap = until(&mut ws, "snapshot").await;
    assert!(snap["agenda"].to_string().contains("Hermione"), "{snap}");
    assert_eq!(snap["lobby"], json!([]));
    until(&mut chair, "participant_joined").await;
    assert_eq!(command(&mut chair, "a2", admit).await["code"], "not_waiting");

    // They speak and may present, but do not drive the meeting.
    assert_eq!(command(&mut ws, "g2", json!({ "kind": "raise_hand" })).await["type"], "ack");
    let grant = json!({ "kind": "grant_present", "user_id": guest.id });
    assert_eq!(command(&mut chair, "p1", grant).await["type"], "ack");
    for (id, cmd) in [
        ("g3", json!({ "kind": "next_case" })),
        ("g4", json!({ "kind": "reorder", "case_ids": [case] })),
        ("g5", json!({ "kind": "close_meeting" })),
        ("g6", json!({ "kind": "deny", "user_id": c.physio.id })),
    ] {
        let answer = command(&mut ws, id, cmd).await;
        assert_eq!(answer["code"], "forbidden", "{id}: {answer}");
    }
    // Nor draft or sign an outcome over REST, though they see the case.
    let shown = c.app.get(&guest.token, &format!("/api/cases/{case}")).await;
    assert_eq!(shown.0, StatusCode::OK, "{}", shown.1);
    let (status, body) = c.put_outcome(&guest, &case, outcome()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{body}"
    );
    expect(StatusCode::OK, c.put_outcome(&c.chair, &case, outcome()).await);
    let (status, body) = c.sign(&guest, &case).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{body}"
    );

    // Admission holds across a reconnect during the meeting.
    drop(ws);
    until(&mut chair, "participant_left").await;
    let mut again = join(&c, &guest, &session).await;
    let first = recv(&mut again).await;
    assert_eq!(first["type"], "snapshot", "{first}");
}

async fn a_guest_turned_away_stays_out(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    // A practitioner of the other specialty is a guest too.
    expect(
        StatusCode::CREATED,
        invite(&c, &c.coordinator, &session, &c.other_physio.id, "guest").await,
    );
    let mut chair = join(&c, &c.chair, &session).await;
    until(&mut chair, "snapshot").await;
    let mut ws = join(&c, &c.other_physio, &session).await;
    assert_eq!(recv(&mut ws).await["type"], "lobby");
    until(&mut chair, "lobby_waiting").await;
    let deny = json!({ "kind": "deny", "user_id": c.other_physio.id });
    // (`command` reads past the `lobby_denied` event to the acknowledgement.)
    assert_eq!(command(&mut chair, "d1", deny).await["type"], "ack");
    let told = recv(&mut ws).await;
    assert_eq!(
        (told["type"].as_str(), told["code"].as_str()),
        (Some("error"), Some("entry_denied"))
    );
    closed(&mut ws).await;
    // Reconnecting does not bring them back to the lobby.
    let mut again = join(&c, &c.other_physio, &session).await;
    assert_eq!(recv(&mut again).await["code"], "entry_denied");
    closed(&mut again).await;
    assert!(quiet(&mut chair).await, "no lobby_waiting for a guest turned away");
}

/// The socket ends (a close frame, or the stream ending) within 10 s.
async fn closed(ws: &mut Ws) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.expect("closed within 10 s") {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
            Some(Ok(Message::Text(t))) => panic!("unexpected after being turned away: {t}"),
            Some(Ok(_)) => {}
        }
    }
}

/// The (method, UID, sequence) of an iCalendar message.
fn calendar(ics: &str) -> (String, String, u32) {
    use icalendar::Component;
    let calendar: icalendar::Calendar = ics.parse().expect("the .ics part parses");
    let method = calendar.property_value("METHOD").expect("a METHOD").to_string();
    let event = calendar.components.iter().find_map(|c| c.as_event()).expect("a VEVENT");
    let uid = event.get_uid().expect("a UID").to_string();
    (method, uid, event.get_sequence().unwrap_or(0))
}

/// The calendar parts of the messages queued for `email` whose subject starts `subject`.
async fn calendars_to(c: &Clinic, email: &str, subject: &str) -> Vec<(String, String, u32)> {
    let outbox = c.app.state.store.outbox_messages().await.unwrap();
    outbox
        .iter()
        .filter(|m| m.to.iter().any(|a| a.as_str() == email) && m.subject.starts_with(subject))
        .map(|m| calendar(m.calendar.as_deref().expect("a calendar part")))
        .collect()
}

async fn invitations_reach_calendars_and_withdrawals_cancel_them(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, false).await;
    let uid = format!("session-{session}@mdt-coordinator");
    let early = c.account("early@example.org", "Eli Early", Role::Practitioner, c.specialty).await;
    let late = c.account("late@example.org", "Lou Late", Role::Practitioner, c.specialty).await;
    // Invited before publication: no mail yet, then the published agenda's invitation.
    expect(StatusCode::CREATED, invite(&c, &c.chair, &session, &early.id, "learner").await);
    assert!(calendars_to(&c, "early@example.org", "").await.is_empty());
    let res = c.post(&c.coordinator, &format!("/api/sessions/{session}/publish"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let published = calendars_to(&c, "early@example.org", "Agenda published").await;
    assert_eq!(published, [("REQUEST".to_string(), uid.clone(), 0)]);

    // Invited after: the invitation at once; withdrawn: its cancellation, same UID.
    expect(StatusCode::CREATED, invite(&c, &c.chair, &session, &late.id, "learner").await);
    // The invitee finds the session among their own invitations (for the schedule).
    let mine = expect(StatusCode::OK, c.app.get(&late.token, "/api/me/invitations").await);
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(
        (mine[0]["session_id"].as_str(), mine[0]["kind"].as_str()),
        (Some(session.as_str()), Some("learner"))
    );
    let request = calendars_to(&c, "late@example.org", "Invitation:").await;
    assert_eq!(request.len(), 1);
    let (method, request_uid, request_seq) = request[0].clone();
    assert_eq!((method.as_str(), request_uid.as_str()), ("REQUEST", uid.as_str()));
    assert_eq!(withdraw(&c, &c.physio, &session, &late).await, StatusCode::FORBIDDEN);
    assert_eq!(withdraw(&c, &c.chair, &session, &late).await, StatusCode::NO_CONTENT);
    let cancel = calendars_to(&c, "late@example.org", "Invitation withdrawn").await;
    assert_eq!(cancel.len(), 1);
    let (method, cancel_uid, cancel_seq) = cancel[0].clone();
    assert_eq!(method, "CANCEL");
    assert_eq!(cancel_uid, request_uid, "the cancellation names the invitation's UID");
    assert!(cancel_seq >= request_seq);
    assert_eq!(withdraw(&c, &c.chair, &session, &late).await, StatusCode::NOT_FOUND);
    let mine = expect(StatusCode::OK, c.app.get(&late.token, "/api/me/invitations").await);
    assert_eq!(mine, json!([]), "a withdrawn invitation is no longer the invitee's");
    assert_eq!(ticket(&c, &late, &session).await.0, StatusCode::FORBIDDEN);
    let audit = c.app.state.store.audit_events().await.unwrap();
    assert!(audit.iter().any(|e| e.action == "invitation_withdrawn"));
    let path = format!("/api/sessions/{session}/invitations");
    let list = expect(StatusCode::OK, c.app.get(&c.chair.token, &path).await);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // Invited again, the row is active again and the calendar entry comes back.
    expect(StatusCode::CREATED, invite(&c, &c.chair, &session, &late.id, "learner").await);
    let requests = calendars_to(&c, "late@example.org", "Invitation:").await;
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|(m, u, _)| m == "REQUEST" && *u == uid));
    assert_eq!(
        expect(StatusCode::OK, c.app.get(&c.chair.token, &path).await).as_array().unwrap().len(),
        2
    );

    // Cancelling the session reaches the invitees' calendars too.
    let res = c.post(&c.coordinator, &format!("/api/sessions/{session}/cancel"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    for email in ["early@example.org", "late@example.org"] {
        let cancelled = calendars_to(&c, email, "Session cancelled").await;
        assert_eq!(cancelled.len(), 1, "{email}");
        assert_eq!((cancelled[0].0.as_str(), cancelled[0].1.as_str()), ("CANCEL", uid.as_str()));
    }
    // A cancelled session's invitations no longer change.
    let (status, body) = invite(&c, &c.chair, &session, &c.other_physio.id, "guest").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_state")));
}

on_both_backends!(
    an_invited_learner_joins_and_their_minutes_reach_their_cpd_record,
    a_guest_waits_in_the_lobby_and_may_not_decide,
    a_guest_turned_away_stays_out,
    invitations_reach_calendars_and_withdrawals_cancel_them,
);

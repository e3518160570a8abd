//! What the route files share, so none imports another: the request extractors
//! ([`AuthUser`], [`ApiJson`]), lookups that answer `404` the same way everywhere (a
//! session, a visible case), a caller's invitation, the calendar organiser, the audit
//! rows every read of patient data writes, the communication clocks' rules, and the
//! patient details and proforma a booking (or a caseload case) gives. It defines no
//! routes.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::access::{agenda_access, case_access, AgendaAccess};
use crate::auth::tokens::TokenError;
use crate::domain::account::reachable_before_password_change;
use crate::domain::case::parse_date_of_birth;
use crate::domain::proforma::{Proforma, ProformaRequest};
use crate::domain::{
    BodySite, CaseDetails, ClinicalText, NhsNumber, OdsCode, ParseError, PatientDetails,
    PersonName, Role, Session, Sex, Specialty, Urgency, User, UserId,
};
use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller.
pub struct AuthUser(pub User);

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        let path = req.path().to_string();
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("app state missing")))?;
            let token =
                token.ok_or_else(|| ApiError::unauthorized("missing_token", "sign in first"))?;
            let user_id = state.tokens.verify_access(&token).map_err(|e| match e {
                TokenError::Expired => {
                    ApiError::unauthorized("token_expired", "the access token has expired")
                }
                TokenError::Invalid => {
                    ApiError::unauthorized("invalid_token", "the access token is not valid")
                }
            })?;
            match state.store.user(user_id).await? {
                Some(user)
                    if user.active
                        && user.must_change_password
                        && !reachable_before_password_change(&path) =>
                {
                    Err(ApiError::Forbidden {
                        code: "password_change_required",
                        message: "change the one-time password first (POST /api/me/password)"
                            .into(),
                    })
                }
                Some(user) if user.active => Ok(AuthUser(user)),
                _ => Err(ApiError::unauthorized("invalid_token", "the access token is not valid")),
            }
        })
    }
}

/// A JSON body read in two steps, so the status says what was wrong: text that is not
/// JSON at all is `400 malformed_json`; JSON of the wrong shape is `422 invalid_field`.
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned> actix_web::FromRequest for ApiJson<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(
        req: &actix_web::HttpRequest, payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(value) = value.await?;
            serde_json::from_value(value).map(ApiJson).map_err(|e| {
                ApiError::Invalid(crate::domain::ParseError::new(
                    "invalid_field",
                    "body",
                    e.to_string(),
                ))
                .into()
            })
        })
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PatientRequest {
    pub nhs_number: String,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: String,
    pub sex: String,
    pub gp_practice_code: String,
}

/// What the referrer writes about the case: given when booking, and again (all of it)
/// when editing a returned booking.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct DetailsRequest {
    clinical_question: String,
    history: String,
    urgency: String,
    body_site: String,
    #[serde(default)]
    red_flags: Vec<String>,
    /// Whether the question and history could identify the patient; assumed when absent.
    free_text_identifies_patient: Option<bool>,
    #[serde(flatten)]
    proforma: ProformaRequest,
}

/// Parses the patient's details as a booking gives them.
pub fn parse_patient(p: &PatientRequest, today: NaiveDate) -> Result<PatientDetails, ParseError> {
    Ok(PatientDetails {
        nhs_number: NhsNumber::parse(&p.nhs_number)?,
        given_name: PersonName::parse(&p.given_name).map_err(|e| e.for_field("given_name"))?,
        family_name: PersonName::parse(&p.family_name).map_err(|e| e.for_field("family_name"))?,
        date_of_birth: parse_date_of_birth(&p.date_of_birth, today)?,
        sex: Sex::parse(&p.sex)?,
        gp_practice_code: OdsCode::parse(&p.gp_practice_code)?,
    })
}

/// Parses the case details and checks the proforma against the specialty's required
/// fields (`422 proforma_field_required` naming the first missing one).
pub async fn parse_details(
    state: &AppState, r: &DetailsRequest, specialty: &Specialty,
) -> Result<CaseDetails, ApiError> {
    let red_flags: Vec<&str> =
        r.red_flags.iter().map(|f| f.trim()).filter(|f| !f.is_empty()).collect();
    if !red_flags.is_empty() {
        return Err(ParseError::new(
            "red_flags_present",
            "red_flags",
            "cases with red flags must not wait for an MDT: refer on the urgent pathway \
             (e.g. suspected cauda equina, cancer, infection or fracture) today",
        )
        .into());
    }
    let details = CaseDetails {
        clinical_question: ClinicalText::parse(&r.clinical_question, "clinical_question")?,
        history: ClinicalText::parse(&r.history, "history")?,
        urgency: Urgency::parse(&r.urgency)?,
        body_site: BodySite::parse(&r.body_site)?,
        free_text_identifies_patient: r.free_text_identifies_patient.unwrap_or(true),
        proforma: Proforma::parse(&r.proforma, Utc::now().date_naive())?,
    };
    let rules = state.store.specialty_rules(specialty).await?;
    details.proforma.check_required(&rules.proforma_required, &details.body_site)?;
    Ok(details)
}

/// The specialty `raw` names, if the service has it (`422 unknown_specialty` otherwise).
pub async fn known_specialty(state: &AppState, raw: &str) -> Result<Specialty, ApiError> {
    let unknown = || ParseError::new("unknown_specialty", "specialty", "no such specialty");
    let arm = Specialty::parse(raw).map_err(|_| unknown())?;
    if !state.store.list_specialties().await?.contains(&arm) {
        return Err(unknown().into());
    }
    Ok(arm)
}

/// The session, or `404 not_found`.
pub async fn session_or_404(state: &AppState, id: Uuid) -> Result<Session, ApiError> {
    state
        .store
        .session(id)
        .await?
        .ok_or_else(|| ApiError::not_found("not_found", "no such session"))
}

/// The caller's active invitation to the session, if any.
pub async fn invitation_of(
    state: &AppState, session_id: Uuid, user: crate::domain::UserId,
) -> Result<Option<crate::domain::invitation::InvitationKind>, ApiError> {
    let invitations = state.store.session_invitations(session_id).await?;
    Ok(invitations.into_iter().find(|i| i.user_id == user).map(|i| i.kind))
}

/// The calendar invitations' organiser: the configured sender's address (else the
/// caller's).
pub fn organizer(state: &AppState, caller: &User) -> crate::domain::EmailAddress {
    crate::domain::EmailAddress::parse(
        state.settings.mail.from.rsplit('<').next().unwrap_or("").trim_end_matches('>'),
    )
    .unwrap_or_else(|_| caller.email.clone())
}

/// Audits a response that shows `cases`: one `case_read` row per case, naming how it
/// was reached, so every read of a patient's record can be traced.
pub async fn audit_case_reads(
    state: &AppState, req: &HttpRequest, caller: &crate::domain::User, via: &str,
    cases: &[crate::domain::Case],
) -> Result<(), ApiError> {
    let events = cases
        .iter()
        .map(|c| {
            state
                .audit_event(req, caller, "case_read", "case")
                .record(c.id)
                .details(json!({ "via": via, "session": c.session_id }))
        })
        .collect();
    state.store.append_audits(events).await?;
    Ok(())
}

/// Audits a response that shows caseload cases (issue 21): one `mentorship_case_read` row
/// per case, naming how it was reached, as [`audit_case_reads`] does for MDT cases.
pub async fn audit_caseload_reads(
    state: &AppState, req: &HttpRequest, caller: &User, via: &str, case_ids: &[Uuid],
) -> Result<(), ApiError> {
    let events = case_ids
        .iter()
        .map(|id| {
            state
                .audit_event(req, caller, "mentorship_case_read", "mentorship_case")
                .record(id)
                .details(json!({ "via": via }))
        })
        .collect();
    state.store.append_audits(events).await?;
    Ok(())
}

/// The arms `caller` mentors today (`domain::mentorship::mentors_arm`): where a contract
/// of theirs runs or they cover one. Only consultants mentor.
pub async fn mentored_arms(state: &AppState, caller: &User) -> Result<Vec<Specialty>, ApiError> {
    if caller.role != Role::Consultant {
        return Ok(Vec::new());
    }
    let today = crate::domain::mentorship::clinic_date(Utc::now());
    let contracts = state.store.mentorship_contracts(None).await?;
    let covers = state.store.mentorship_covers().await?;
    let arms = contracts.iter().map(|c| &c.specialty).chain(covers.iter().map(|v| &v.specialty));
    let mut mentored: Vec<Specialty> = Vec::new();
    for arm in arms {
        let mentors =
            crate::domain::mentorship::mentors_arm(caller.id, arm, &contracts, &covers, today);
        if mentors && !mentored.contains(arm) {
            mentored.push(arm.clone());
        }
    }
    Ok(mentored)
}

/// What `user` received as a mentee over `days` (issue 21): the mentorship logs naming
/// them as a mentee and their workplace-based assessments, oldest first. No patient data.
pub async fn mentee_record(
    state: &AppState, user: UserId, days: crate::domain::mentorship::DateRange,
) -> Result<
    (Vec<crate::domain::mentorship::MentorshipLog>, Vec<crate::domain::supervision::Assessment>),
    ApiError,
> {
    let mut logs = state.store.mentorship_logs(days, Some(user)).await?;
    logs.retain(|l| l.mentee_ids.contains(&user));
    let assessments = state.store.assessments(Some(user), days).await?;
    Ok((logs, assessments))
}

/// Appends an audit event for an action by `caller` on `record`.
pub async fn audit(
    state: &AppState, req: &HttpRequest, caller: &crate::domain::User, action: &str,
    record: impl ToString,
) -> Result<(), ApiError> {
    let record_type = action.split('_').next().unwrap_or("record");
    let event = state.audit_event(req, caller, action, record_type).record(record);
    state.store.append_audit(event).await?;
    Ok(())
}

/// Every case booked under `nhs_number`, oldest first.
pub async fn patient_cases(
    state: &AppState, nhs_number: &NhsNumber,
) -> Result<Vec<crate::domain::Case>, ApiError> {
    let mut cases = Vec::new();
    for id in state.store.patient_case_ids(nhs_number).await? {
        cases.extend(state.store.case(id).await?);
    }
    Ok(cases)
}

/// When the case was discussed, from its session's meeting events (`None` if the meeting
/// never took it up).
pub async fn discussion_of(
    state: &AppState, case: &crate::domain::Case,
) -> Result<Option<crate::domain::live::Discussion>, ApiError> {
    let events = state.store.live_events(case.session_id, 0, u64::MAX).await?;
    Ok(crate::domain::live::discussion(&events, case.id))
}

/// Loads a case and its session, or 404 when it does not exist or the caller may not
/// see it (its existence is not revealed). The session's invitees see its cases as they
/// see its agenda (guests and learners identified, trainees de-identified).
pub async fn visible_case(
    state: &AppState, caller: &User, id: Uuid,
) -> Result<(crate::domain::Case, AgendaAccess), ApiError> {
    let hidden = || ApiError::not_found("not_found", "no such case");
    let case = state.store.case(id).await?.ok_or_else(hidden)?;
    let session = state.store.session(case.session_id).await?.ok_or_else(hidden)?;
    let access = match case_access(caller, &case, &session) {
        // An invitee sees the cases of the session as they see its agenda.
        AgendaAccess::None => {
            let invited = invitation_of(state, session.id, caller.id).await?;
            agenda_access(caller, &session, false, invited)
        }
        access => access,
    };
    match access {
        AgendaAccess::None => Err(hidden()),
        access => Ok((case, access)),
    }
}

/// Who is invited to a published session: the chair, the referrers of its cases, the
/// specialty's consultants, for teaching sessions its trainees, and everyone with an
/// active invitation (learners, trainees, guests); active accounts only.
pub async fn invitees(
    state: &AppState, session: &Session, cases: &[crate::domain::Case],
) -> Result<Vec<crate::domain::EmailAddress>, crate::store::StoreError> {
    let mut named: Vec<UserId> = cases.iter().map(|c| c.referrer_id).collect();
    let invited = state.store.session_invitations(session.id).await?;
    named.extend(invited.iter().map(|i| i.user_id));
    let mut invitees: Vec<crate::domain::EmailAddress> = state
        .store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.active)
        .filter(|u| {
            u.id == session.plan.chair_id
                || named.contains(&u.id)
                || (u.has_specialty(&session.plan.specialty)
                    && (u.role == Role::Consultant
                        || (session.plan.teaching && u.role == Role::Trainee)))
        })
        .map(|u| u.email)
        .collect();
    invitees.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    invitees.dedup();
    Ok(invitees)
}

/// The configured clocks with the stored bank holidays.
pub async fn clock_rules(
    state: &AppState,
) -> Result<crate::domain::communication::ClockRules, ApiError> {
    Ok(crate::domain::communication::ClockRules {
        referrer_working_days: state.settings.letters.referrer_working_days,
        patient_working_days: state.settings.letters.patient_working_days,
        holidays: state.store.bank_holiday_dates().await?,
    })
}

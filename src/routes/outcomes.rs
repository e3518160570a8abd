//! Case outcomes (DESIGN §3 "Outcome", §4 flow 5): the chair or a consultant drafts the
//! decision, a consultant signs it (the referrer gets the letter; a re-discussion books
//! a follow-up case), and a signed outcome is only ever corrected by an amendment. Reads
//! are audited, and de-identified viewers get the versions without any free text.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::access::{may_draft_outcome, may_sign_outcome, AgendaAccess};
use crate::domain::booking::check_amendable;
use crate::domain::conflict::Conflict;
use crate::domain::live::discussed_at;
use crate::domain::outcome::{check_follow_up_session, OutcomeVersionView};
use crate::domain::{
    Amendment, AmendmentRequest, Case, CaseView, OutcomeDraft, OutcomeRequest, OutcomeVersion,
    ParseError, Session, User,
};
use crate::error::ApiError;
use crate::letters::issue::letter_inputs;
use crate::letters::LetterFacts;
use crate::mail::templates;
use crate::routes::support::{
    audit_case_reads, discussion_of, session_or_404, visible_case, ApiJson, AuthUser,
};
use crate::state::AppState;
use crate::store::{self, StoreError};

/// An outcome version as shown, with the name of the consultant who signed it.
#[derive(Serialize, utoipa::ToSchema)]
struct Signed<'a> {
    #[serde(flatten)]
    version: OutcomeVersionView<'a>,
    signed_by_name: Option<String>,
}

fn signer_name(
    v: &OutcomeVersion, names: &std::collections::HashMap<crate::domain::UserId, Option<String>>,
) -> Option<String> {
    v.signed_by.and_then(|id| names.get(&id).cloned().flatten())
}

#[derive(Serialize, utoipa::ToSchema)]
struct SignedOut<'a> {
    #[serde(flatten)]
    version: &'a OutcomeVersion,
    #[schema(value_type = String)]
    signed_by_name: &'a str,
    follow_up_case: Option<CaseView>,
}

/// What `GET /api/cases/{id}/outcome` answers (written with `json!`; this describes it):
/// every version, oldest first, and the current one (`null` before any draft).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct OutcomeHistory<'a> {
    case_id: Uuid,
    current: Option<Signed<'a>>,
    versions: Vec<Signed<'a>>,
}

/// What `GET /api/cases/{id}/outcome/letter` answers (written with `json!`; this
/// describes it): the letter to the referrer for the latest signed version.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct OutcomeLetterText {
    version: u32,
    subject: String,
    body: String,
}

/// The case (if the caller may see it at all, else 404) and its session.
async fn case_and_session(
    state: &AppState, caller: &User, id: Uuid,
) -> Result<(Case, Session, AgendaAccess), ApiError> {
    let (case, access) = visible_case(state, caller, id).await?;
    let session = session_or_404(state, case.session_id).await?;
    Ok((case, session, access))
}

/// The session a `re_discuss` follow-up names, checked to exist, be of the same
/// specialty and start later (`422 invalid_follow_up_session` otherwise).
async fn follow_up_session(
    state: &AppState, session: &Session, draft: &OutcomeDraft,
) -> Result<Option<Session>, ApiError> {
    let Some(id) = draft.follow_up.re_discuss_session() else {
        return Ok(None);
    };
    let target = state.store.session(id).await?.ok_or_else(|| {
        ParseError::new("invalid_follow_up_session", "follow_up.session_id", "no such session")
    })?;
    check_follow_up_session(session, &target)?;
    Ok(Some(target))
}

/// The date every letter of a case gives for its discussion (`discussed_at`): when the
/// meeting took it up, or, for a case decided outside a meeting, as of its first signing
/// (now, when signing it), so the signed, amended and in-app letters all agree.
async fn letter_date(
    state: &AppState, case: &Case, session: &Session,
) -> Result<DateTime<Utc>, ApiError> {
    let first_signed = state
        .store
        .outcome_versions(case.id)
        .await?
        .iter()
        .find_map(|v| v.signed_at)
        .unwrap_or_else(Utc::now);
    Ok(discussed_at(discussion_of(state, case).await?, session, first_signed))
}

/// The optional sign body `{"outside_meeting_reason"}` (an empty body is none): why the
/// consultant decides for a case its meeting did not discuss.
fn outside_meeting_reason(body: &[u8]) -> Result<Option<String>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SignRequest {
        outside_meeting_reason: Option<String>,
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let request: SignRequest = serde_json::from_slice(body).map_err(|_| {
        ApiError::bad_request("malformed_json", "request body is not a sign request")
    })?;
    let field = "outside_meeting_reason";
    let reason = request.outside_meeting_reason.filter(|r| !r.trim().is_empty());
    Ok(reason.map(|r| crate::domain::bounded_text(&r, field, 1000, true)).transpose()?)
}

/// The outcome letter to the case's referrer about `version`, signed by `signer`.
fn letter(
    referrer: Option<&User>, signer: &User, follow_up: Option<&Session>,
    discussed: templates::Discussed<'_>, (case, version): (&Case, &OutcomeVersion), amended: bool,
) -> Option<crate::domain::NewMessage> {
    Some(templates::outcome_letter(
        &referrer?.email,
        discussed,
        case,
        version,
        &signer.name,
        follow_up,
        amended,
    ))
}

/// `PUT /api/cases/{id}/outcome`: saves the draft (version 1, or the current unsigned
/// version); `409 outcome_signed` once signed.
#[utoipa::path(
    put, path = "/api/cases/{id}/outcome", operation_id = "outcomes_draft", tag = "outcomes",
    request_body = OutcomeRequest,
    responses((status = 200, description = "OK", body = Signed)),
)]
pub async fn draft(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    ApiJson(body): ApiJson<OutcomeRequest>,
) -> Result<HttpResponse, ApiError> {
    let draft = OutcomeDraft::try_from(body)?;
    let (case, session, _) = case_and_session(&state, &caller, *id).await?;
    may_draft_outcome(&caller, &session)?;
    follow_up_session(&state, &session, &draft).await?;
    let event = state.audit_event(&req, &caller, "outcome_drafted", "case");
    let version = state.store.draft_outcome(case.id, draft, caller.id, event, Utc::now()).await?;
    // A live meeting's event was stored with the draft; its room reads it now.
    state.live.events_appended(session.id);
    // A draft is not signed (`signed_by_name` null), shown in the shape every version has.
    Ok(HttpResponse::Ok()
        .json(Signed { version: OutcomeVersionView::of(&version, true), signed_by_name: None }))
}

/// `POST /api/cases/{id}/outcome/sign`: a consultant of the specialty signs the current
/// draft; the referrer's letter and any follow-up case commit with it.
#[utoipa::path(
    post, path = "/api/cases/{id}/outcome/sign", operation_id = "outcomes_sign", tag = "outcomes",
    responses((status = 200, description = "OK", body = SignedOut)),
)]
pub async fn sign(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let outside_meeting_reason = outside_meeting_reason(&body)?;
    let (case, session, _) = case_and_session(&state, &caller, *id).await?;
    may_sign_outcome(&caller, &session)?;
    let referrer = state.store.user(case.referrer_id).await?;
    let discussed_at = letter_date(&state, &case, &session).await?;
    let inputs = letter_inputs(&state.store, &case, &session).await?;
    let signed = store::until_unchanged(|| async {
        let draft = state.store.outcome_versions(case.id).await?.pop();
        let draft = draft.ok_or(StoreError::Conflict(Conflict::NoDraft))?;
        // For the letter only: the store checks the follow-up inside the signing.
        let target = follow_up_session(&state, &session, &draft.body).await.unwrap_or(None);
        let reason = outside_meeting_reason.clone();
        let version = OutcomeVersion { outside_meeting_reason: reason, ..draft }
            .signed(caller.id, state.clock.now());
        let discussed = templates::Discussed { session: &session, at: discussed_at };
        let mail = letter(
            referrer.as_ref(),
            &caller,
            target.as_ref(),
            discussed,
            (&case, &version),
            false,
        );
        let facts = LetterFacts {
            case: &case,
            version: &version,
            session: &session,
            discussed_at,
            follow_up_session: target.as_ref(),
            signer: &caller.name,
            referrer: referrer.as_ref(),
            practice: inputs.practice.as_ref(),
            present: &inputs.present,
        };
        let letters = state.letters.new_letters(&facts).await?;
        let event = state.audit_event(&req, &caller, "outcome_signed", "case");
        let follow_up_id = Uuid::new_v4();
        state.store.sign_outcome(case.id, &version, event, mail, &letters, follow_up_id).await
    })
    .await?;
    state.mail_wake.notify_one();
    state.live.events_appended(session.id);
    let today = Utc::now().date_naive();
    Ok(HttpResponse::Ok().json(SignedOut {
        version: &signed.version,
        signed_by_name: caller.name.as_str(),
        follow_up_case: signed.follow_up_case.as_ref().map(|c| CaseView::of(c, true, 0, today)),
    }))
}

/// `POST /api/cases/{id}/outcome/amendments {reason, …outcome}`: a consultant of the
/// specialty corrects a signed outcome with a new, signed version that supersedes it.
#[utoipa::path(
    post, path = "/api/cases/{id}/outcome/amendments", operation_id = "outcomes_amend", tag = "outcomes",
    request_body = AmendmentRequest,
    responses((status = 201, description = "OK", body = Signed)),
)]
pub async fn amend(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    ApiJson(body): ApiJson<AmendmentRequest>,
) -> Result<HttpResponse, ApiError> {
    let amendment = Amendment::try_from(body)?;
    let (case, session, _) = case_and_session(&state, &caller, *id).await?;
    may_sign_outcome(&caller, &session)?;
    let target = follow_up_session(&state, &session, &amendment.body).await?;
    let referrer = state.store.user(case.referrer_id).await?;
    let discussed_at = letter_date(&state, &case, &session).await?;
    let inputs = letter_inputs(&state.store, &case, &session).await?;
    let version = store::until_unchanged(|| async {
        let current = state.store.outcome_versions(case.id).await?.pop();
        let current = check_amendable(current.as_ref())?;
        let amended = current.amended(amendment.clone(), caller.id, state.clock.now());
        let discussed = templates::Discussed { session: &session, at: discussed_at };
        let mail =
            letter(referrer.as_ref(), &caller, target.as_ref(), discussed, (&case, &amended), true);
        let facts = LetterFacts {
            case: &case,
            version: &amended,
            session: &session,
            discussed_at,
            follow_up_session: target.as_ref(),
            signer: &caller.name,
            referrer: referrer.as_ref(),
            practice: inputs.practice.as_ref(),
            present: &inputs.present,
        };
        let letters = state.letters.new_letters(&facts).await?;
        let event = state.audit_event(&req, &caller, "outcome_amended", "case");
        state.store.amend_outcome(case.id, &amended, event, mail, &letters).await
    })
    .await?;
    state.mail_wake.notify_one();
    state.live.events_appended(session.id);
    Ok(HttpResponse::Created().json(Signed {
        version: OutcomeVersionView::of(&version, true),
        signed_by_name: Some(caller.name.as_str().to_string()),
    }))
}

/// `GET /api/cases/{id}/outcome` (audited): every version, and the current one.
#[utoipa::path(
    get, path = "/api/cases/{id}/outcome", operation_id = "outcomes_show", tag = "outcomes",
    responses((status = 200, description = "OK", body = OutcomeHistory)),
)]
pub async fn show(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (case, access) = visible_case(&state, &caller, *id).await?;
    let versions = state.store.outcome_versions(case.id).await?;
    audit_case_reads(&state, &req, &caller, "outcome", std::slice::from_ref(&case)).await?;
    let identified = access == AgendaAccess::Full;
    // Everyone who sees an outcome sees who signed it (a consultant, never the patient).
    let mut signers = std::collections::HashMap::new();
    for id in versions.iter().filter_map(|v| v.signed_by) {
        if let std::collections::hash_map::Entry::Vacant(e) = signers.entry(id) {
            e.insert(state.store.user(id).await?.map(|u| u.name.as_str().to_string()));
        }
    }
    let view = |v| Signed {
        signed_by_name: signer_name(v, &signers),
        version: OutcomeVersionView::of(v, identified),
    };
    let views: Vec<Signed> = versions.iter().map(view).collect();
    let current = versions.last().map(view);
    Ok(HttpResponse::Ok().json(json!({
        "case_id": case.id,
        "current": current,
        "versions": views,
    })))
}

/// `GET /api/cases/{id}/outcome/letter` (audited): the referrer's letter for the latest
/// signed version, worded as it was sent. Identified viewers only: the letter names the
/// patient. `404 no_signed_outcome` before signing.
#[utoipa::path(
    get, path = "/api/cases/{id}/outcome/letter", operation_id = "outcomes_letter_text", tag = "outcomes",
    responses((status = 200, description = "OK", body = OutcomeLetterText)),
)]
pub async fn letter_text(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (case, session, access) = case_and_session(&state, &caller, *id).await?;
    if access != AgendaAccess::Full {
        return Err(ApiError::forbidden("the outcome letter identifies the patient"));
    }
    let versions = state.store.outcome_versions(case.id).await?;
    let no_letter = || ApiError::not_found("no_signed_outcome", "the outcome has not been signed");
    let version = versions.iter().rev().find(|v| v.is_signed()).ok_or_else(no_letter)?;
    let referrer = state.store.user(case.referrer_id).await?.ok_or_else(no_letter)?;
    let signer = match version.signed_by {
        Some(id) => state.store.user(id).await?,
        None => None,
    }
    .ok_or_else(no_letter)?;
    let target = follow_up_session(&state, &session, &version.body).await.unwrap_or(None);
    audit_case_reads(&state, &req, &caller, "outcome_letter", std::slice::from_ref(&case)).await?;
    let discussed =
        templates::Discussed { session: &session, at: letter_date(&state, &case, &session).await? };
    let letter = templates::outcome_letter(
        &referrer.email,
        discussed,
        &case,
        version,
        &signer.name,
        target.as_ref(),
        version.supersedes.is_some(),
    );
    Ok(HttpResponse::Ok().json(json!({
        "version": version.version,
        "subject": letter.subject,
        "body": letter.body,
    })))
}

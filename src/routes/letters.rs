//! Letters after a signed outcome: a case's letters with their deliveries and each
//! letter's PDF (for those who see the case identified; audited as reads of the case),
//! the coordinators' print-and-post list, and recording a print. Making the letters is
//! the signing's (`routes::outcomes`, `crate::letters`).

use actix_web::{web, HttpRequest, HttpResponse};
use uuid::Uuid;

use crate::auth::access::AgendaAccess;
use crate::domain::letter::Letter;
use crate::domain::{Role, User};
use crate::error::ApiError;
use crate::routes::support::{audit_case_reads, visible_case, AuthUser};
use crate::state::AppState;

fn coordinator_only(caller: &User) -> Result<(), ApiError> {
    if caller.role == Role::Coordinator {
        Ok(())
    } else {
        Err(ApiError::forbidden("coordinators keep the print-and-post list"))
    }
}

/// The case, if the caller sees it identified (`404` when not at all, `403` when only
/// de-identified: letters name the patient).
async fn identified_case(
    state: &AppState, caller: &User, case_id: Uuid,
) -> Result<crate::domain::Case, ApiError> {
    let (case, access) = visible_case(state, caller, case_id).await?;
    if access != AgendaAccess::Full {
        return Err(ApiError::forbidden("letters identify the patient"));
    }
    Ok(case)
}

async fn letter_or_404(state: &AppState, id: Uuid) -> Result<Letter, ApiError> {
    state.store.letter(id).await?.ok_or_else(|| ApiError::not_found("not_found", "no such letter"))
}

/// `GET /api/cases/{id}/letters` (audited): every letter of the case, oldest first.
#[utoipa::path(
    get, path = "/api/cases/{id}/letters", operation_id = "letters_of_case", tag = "letters",
    responses((status = 200, description = "OK", body = [Letter])),
)]
pub async fn of_case(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let case = identified_case(&state, &caller, *id).await?;
    let letters = state.store.case_letters(case.id).await?;
    audit_case_reads(&state, &req, &caller, "letters", std::slice::from_ref(&case)).await?;
    Ok(HttpResponse::Ok().json(letters))
}

/// `GET /api/letters/{id}/pdf` (audited as a read of its case): the letter as stored.
#[utoipa::path(
    get, path = "/api/letters/{id}/pdf", operation_id = "letters_pdf", tag = "letters",
    responses(
        (status = 200, description = "the letter as PDF", content_type = "application/pdf", body = String),
    ),
)]
pub async fn pdf(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let letter = letter_or_404(&state, *id).await?;
    let case = identified_case(&state, &caller, letter.case_id).await?;
    let bytes = state.blobs.get(&letter.sha256).await.map_err(ApiError::internal)?;
    audit_case_reads(&state, &req, &caller, "letter_pdf", std::slice::from_ref(&case)).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            "Content-Disposition",
            format!("inline; filename=\"letter-{}-v{}.pdf\"", letter.kind.as_str(), letter.version),
        ))
        .body(bytes))
}

/// `GET /api/letters/print` (coordinators): the print-and-post list, oldest first.
#[utoipa::path(
    get, path = "/api/letters/print", operation_id = "letters_to_print", tag = "letters",
    responses((status = 200, description = "OK", body = [Letter])),
)]
pub async fn to_print(
    state: web::Data<AppState>, AuthUser(caller): AuthUser,
) -> Result<HttpResponse, ApiError> {
    coordinator_only(&caller)?;
    Ok(HttpResponse::Ok().json(state.store.letters_to_print().await?))
}

/// `POST /api/letters/{id}/printed` (coordinators): records who printed the letter and
/// when for each post delivery still waiting; `409 already_printed` when none waits.
#[utoipa::path(
    post, path = "/api/letters/{id}/printed", operation_id = "letters_printed", tag = "letters",
    responses((status = 200, description = "OK", body = Letter)),
)]
pub async fn printed(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    coordinator_only(&caller)?;
    let letter = letter_or_404(&state, *id).await?;
    let event = state.audit_event(&req, &caller, "letter_printed", "letter");
    let marked = state.store.letter_printed(letter.id, caller.id, event, state.clock.now()).await?;
    if marked == 0 {
        return Err(ApiError::conflict("already_printed", "no post delivery of this letter waits"));
    }
    Ok(HttpResponse::Ok().json(letter_or_404(&state, letter.id).await?))
}

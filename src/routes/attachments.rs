//! Attachments: multipart upload to a case (size-capped, type sniffed from the bytes),
//! listing, download (audited, always as a download, never rendered inline), and the
//! viewer's endpoints: an image's facts and its frames rendered to PNG (issue 18).

use actix_multipart::Multipart;
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::TryStreamExt;
use serde::Deserialize;
use std::sync::Arc;
use uuid::Uuid;

use crate::auth::access::AgendaAccess;
use crate::domain::attachment::clean_filename;
use crate::domain::viewer::{self, RenderError, RenderRequest};
use crate::domain::{dicom, Attachment, AttachmentKind, Case, ParseError, User};
use crate::error::ApiError;
use crate::routes::support::{audit, visible_case, AuthUser};
use crate::state::AppState;
use crate::store::renders::RenderKey;

/// A case the caller may see with identifiers (attachments may carry identifiers, e.g.
/// DICOM headers, so trainees never receive them); otherwise 404.
async fn identified_case(state: &AppState, caller: &User, case_id: Uuid) -> Result<Case, ApiError> {
    match visible_case(state, caller, case_id).await? {
        (case, AgendaAccess::Full) => Ok(case),
        _ => Err(ApiError::not_found("not_found", "no such case")),
    }
}

/// Reads the `file` part, refusing as soon as it passes the size cap.
async fn read_file(
    mut payload: Multipart, cap: usize,
) -> Result<(String, Option<String>, Vec<u8>), ApiError> {
    let malformed = |_| {
        ApiError::bad_request("malformed_multipart", "the upload is not valid multipart/form-data")
    };
    while let Some(mut field) = payload.try_next().await.map_err(malformed)? {
        if field.name() != Some("file") {
            continue;
        }
        let declared =
            field.content_type().map(|m| m.essence_str().to_string()).unwrap_or_default();
        let filename =
            field.content_disposition().and_then(|d| d.get_filename()).map(str::to_string);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.try_next().await.map_err(malformed)? {
            if bytes.len() + chunk.len() > cap {
                return Err(ApiError::PayloadTooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok((declared, filename, bytes));
    }
    Err(ParseError::new("required", "file", "send the file in a part named \"file\"").into())
}

/// A file upload: one part named `file`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct Upload {
    /// The file (PNG, JPEG, DICOM, PDF or text); its type is checked from its bytes.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// `POST /api/cases/{id}/attachments` (multipart, part `file`): `201 {id, sha256, size,
/// content_type, filename}`.
#[utoipa::path(
    post, path = "/api/cases/{id}/attachments", operation_id = "attachments_upload",
    tag = "attachments",
    request_body(content = Upload, content_type = "multipart/form-data"),
    responses((status = 201, description = "Stored", body = Attachment)),
)]
pub async fn upload(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    case_id: web::Path<Uuid>, payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    let case = identified_case(&state, &caller, *case_id).await?;
    if !case.state.holds_slot() {
        return Err(ApiError::conflict(
            "invalid_state",
            format!("a {} case takes no attachments", case.state.as_str()),
        ));
    }
    let (declared, filename, bytes) =
        read_file(payload, state.settings.data.attachment_max_bytes).await?;
    let kind = AttachmentKind::check(&declared, &bytes)?;
    // A data folder that cannot be written is an outage, not a bug: 503, nothing stored.
    let sha256 = state.blobs.put(&bytes).await.map_err(|e| {
        tracing::error!(error = %e, "the attachment store cannot be written");
        ApiError::Unavailable { retry_after_secs: 30 }
    })?;
    let attachment = Attachment {
        id: Uuid::new_v4(),
        case_id: case.id,
        sha256,
        size: bytes.len() as u64,
        content_type: kind.mime().to_string(),
        filename: clean_filename(filename.as_deref()),
        uploaded_by: caller.id,
        uploaded_at: Utc::now(),
    };
    let event = state.audit_event(&req, &caller, "attachment_uploaded", "attachment");
    // A failed insert leaves the file: an upload of the same bytes may have found it and
    // be committing its own row to it right now, and removing it would leave that row
    // without its file. A file no row names is never served and never backed up.
    state.store.add_attachment(&attachment, event).await?;
    Ok(HttpResponse::Created().json(attachment))
}

/// `GET /api/cases/{id}/attachments`.
#[utoipa::path(
    get, path = "/api/cases/{id}/attachments", operation_id = "attachments_list",
    tag = "attachments",
    responses((status = 200, description = "The case's attachments", body = [Attachment])),
)]
pub async fn list(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser,
    case_id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let case = identified_case(&state, &caller, *case_id).await?;
    let attachments = state.store.case_attachments(case.id).await?;
    audit(&state, &req, &caller, "attachments_listed", case.id).await?;
    Ok(HttpResponse::Ok().json(attachments))
}

/// The attachment, when the caller may see its case with identifiers; `404 not_found`
/// otherwise, as for an attachment that does not exist.
async fn visible_attachment(
    state: &AppState, caller: &User, id: Uuid,
) -> Result<Attachment, ApiError> {
    let hidden = || ApiError::not_found("not_found", "no such attachment");
    let attachment = state.store.attachment(id).await?.ok_or_else(hidden)?;
    identified_case(state, caller, attachment.case_id).await.map_err(|_| hidden())?;
    Ok(attachment)
}

/// How a failed render is answered: never a 5xx for what the file holds.
fn render_refusal(e: RenderError) -> ApiError {
    match e {
        RenderError::NotAnImage => {
            ApiError::not_found("not_an_image", "this attachment is not an image")
        }
        RenderError::UnsupportedTransferSyntax(uid) => ApiError::Unsupported {
            code: "unsupported_transfer_syntax",
            message: format!(
                "this study's pixel data ({uid}) cannot be shown here; supported: {}",
                dicom::SUPPORTED
            ),
        },
        RenderError::FrameOutOfRange { frames } => ParseError::new(
            "frame_out_of_range",
            "frame",
            format!("this image has {frames} frame(s), numbered from 0"),
        )
        .into(),
        RenderError::TooLarge => {
            ParseError::new("image_too_large", "file", "the image is too large to show").into()
        }
        RenderError::Undecodable(why) => {
            tracing::info!(reason = %why, "an attachment's pixels could not be decoded");
            ParseError::new("undecodable_image", "file", "the image's pixels could not be read")
                .into()
        }
    }
}

/// The kind and bytes of an image attachment (`404 not_an_image` for another kind).
async fn image_of(
    state: &AppState, attachment: &Attachment,
) -> Result<(AttachmentKind, Vec<u8>), ApiError> {
    let kind = AttachmentKind::from_mime(&attachment.content_type)
        .filter(|k| matches!(k, AttachmentKind::Png | AttachmentKind::Jpeg | AttachmentKind::Dicom))
        .ok_or_else(|| render_refusal(RenderError::NotAnImage))?;
    let bytes = state.blobs.get(&attachment.sha256).await.map_err(ApiError::internal)?;
    Ok((kind, bytes))
}

/// Runs CPU-bound viewer work off the async threads.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RenderError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(ApiError::internal)?.map_err(render_refusal)
}

/// `GET /api/attachments/{id}/info`: what an image attachment (PNG, JPEG, DICOM) is: its
/// frames and size and, for DICOM, the study's non-identifying header facts (modality,
/// body part, study date, series description, default window, pixel spacing), for
/// whoever may see the case with identifiers. The header's patient fields are never
/// sent. Audited (`attachment_info_read`). `404 not_an_image` for a PDF or text.
#[utoipa::path(
    get, path = "/api/attachments/{id}/info", operation_id = "attachments_info",
    tag = "attachments",
    responses((status = 200, description = "OK", body = viewer::Info)),
)]
pub async fn info(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let attachment = visible_attachment(&state, &caller, *id).await?;
    let (kind, bytes) = image_of(&state, &attachment).await?;
    let info = off_thread(move || viewer::info(kind, &bytes)).await?;
    audit(&state, &req, &caller, "attachment_info_read", attachment.id).await?;
    Ok(HttpResponse::Ok().json(info))
}

/// The render's query: every parameter optional (see [`RenderRequest::parse`]).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RenderQuery {
    /// The frame, from 0 (default 0).
    frame: Option<String>,
    /// Window centre in modality units, with `ww` (default: the stored window).
    wc: Option<String>,
    /// Window width, at least 1, with `wc`.
    ww: Option<String>,
    /// The output's longer edge in pixels, 16–4096 (never enlarged).
    size: Option<String>,
}

/// `GET /api/attachments/{id}/render?frame=N&wc=&ww=&size=`: one frame of an image
/// attachment as PNG, windowed (the stored window by default) and shrunk to `size` (the
/// longer edge). Cached by the file's hash and the parameters; audited
/// (`attachment_rendered`), like every read of patient data.
#[utoipa::path(
    get, path = "/api/attachments/{id}/render", operation_id = "attachments_render",
    tag = "attachments",
    params(RenderQuery),
    responses(
        (status = 200, description = "The frame", content_type = "image/png", body = String),
        (status = 415, description = "The DICOM transfer syntax cannot be decoded here"),
    ),
)]
pub async fn render(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
    query: web::Query<RenderQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let request = RenderRequest::parse(
        q.frame.as_deref(),
        q.wc.as_deref(),
        q.ww.as_deref(),
        q.size.as_deref(),
    )?;
    let attachment = visible_attachment(&state, &caller, *id).await?;
    let key = RenderKey::new(&attachment.sha256, &request);
    let png = match state.renders.get(&key) {
        Some(png) => png,
        None => {
            let (kind, bytes) = image_of(&state, &attachment).await?;
            let png: Arc<[u8]> =
                off_thread(move || viewer::render(kind, &bytes, &request)).await?.into();
            state.renders.insert(key, png.clone());
            png
        }
    };
    audit(&state, &req, &caller, "attachment_rendered", attachment.id).await?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(png.to_vec()))
}

/// `GET /api/attachments/{id}`: the bytes, as an attachment download (audited).
#[utoipa::path(
    get, path = "/api/attachments/{id}", operation_id = "attachments_download",
    tag = "attachments",
    responses((
        status = 200, description = "The file, with its stored media type",
        content_type = "application/octet-stream", body = String,
    )),
)]
pub async fn download(
    req: HttpRequest, state: web::Data<AppState>, AuthUser(caller): AuthUser, id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let attachment = visible_attachment(&state, &caller, *id).await?;
    let bytes = state.blobs.get(&attachment.sha256).await.map_err(ApiError::internal)?;
    audit(&state, &req, &caller, "attachment_downloaded", attachment.id).await?;
    Ok(HttpResponse::Ok()
        .content_type(attachment.content_type.as_str())
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(attachment.filename.clone())],
        })
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes))
}

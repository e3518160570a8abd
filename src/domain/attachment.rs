//! Attachments: the accepted kinds, and the rule that a file's bytes must be what its
//! uploader declared (sniffed from the bytes, never trusted from the name or header).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::dicom;
use super::parse::ParseError;
use super::user::UserId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachmentKind {
    Png,
    Jpeg,
    Dicom,
    Pdf,
    Text,
}

impl AttachmentKind {
    const ALL: [AttachmentKind; 5] = [
        AttachmentKind::Png,
        AttachmentKind::Jpeg,
        AttachmentKind::Dicom,
        AttachmentKind::Pdf,
        AttachmentKind::Text,
    ];

    pub fn mime(self) -> &'static str {
        match self {
            AttachmentKind::Png => "image/png",
            AttachmentKind::Jpeg => "image/jpeg",
            AttachmentKind::Dicom => "application/dicom",
            AttachmentKind::Pdf => "application/pdf",
            AttachmentKind::Text => "text/plain",
        }
    }

    pub fn from_mime(mime: &str) -> Option<Self> {
        let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|k| k.mime() == essence)
    }

    /// What the bytes are, by their magic numbers; UTF-8 without control characters
    /// (other than line breaks and tabs) counts as plain text. A file with the DICOM
    /// marker is DICOM only when it parses as DICOM ([`dicom::parses`]), whatever its
    /// 128-byte preamble looks like (many start like a TIFF file).
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if dicom::has_marker(bytes) {
            return dicom::parses(bytes).then_some(AttachmentKind::Dicom);
        }
        if let Some(t) = infer::get(bytes) {
            return Self::from_mime(t.mime_type());
        }
        let text = std::str::from_utf8(bytes).ok()?;
        text.chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
            .then_some(AttachmentKind::Text)
    }

    /// Accepts the upload only if it is non-empty, of a supported type, and its bytes
    /// are what was declared. An upload declared only as `application/octet-stream` (or
    /// not at all) is what its bytes are: browsers declare DICOM files (`.dcm`) so, as
    /// they know no type for them.
    pub fn check(declared: &str, bytes: &[u8]) -> Result<Self, ParseError> {
        if bytes.is_empty() {
            return Err(ParseError::new("empty_attachment", "file", "the file is empty"));
        }
        let unsupported = || {
            ParseError::new(
                "unsupported_attachment_type",
                "file",
                "attach PNG, JPEG, DICOM, PDF or plain text",
            )
        };
        if dicom::has_marker(bytes) && Self::sniff(bytes).is_none() {
            return Err(ParseError::new(
                "invalid_dicom",
                "file",
                "the file is marked as DICOM but does not parse as DICOM",
            ));
        }
        let essence = declared.split(';').next().unwrap_or("").trim();
        if essence.is_empty() || essence.eq_ignore_ascii_case("application/octet-stream") {
            return Self::sniff(bytes).ok_or_else(unsupported);
        }
        let declared = Self::from_mime(declared).ok_or_else(unsupported)?;
        match Self::sniff(bytes) {
            Some(actual) if actual == declared => Ok(actual),
            Some(actual) => Err(ParseError::new(
                "attachment_type_mismatch",
                "file",
                format!("declared {} but the file is {}", declared.mime(), actual.mime()),
            )),
            None => Err(ParseError::new(
                "attachment_type_mismatch",
                "file",
                format!("declared {} but the file is not a supported type", declared.mime()),
            )),
        }
    }
}

/// A safe download name: the last path segment, letters, digits, `.-_ ` only.
pub fn clean_filename(raw: Option<&str>) -> String {
    let base = raw.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' '))
        .take(100)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "attachment".to_string()
    } else {
        cleaned
    }
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub id: Uuid,
    pub case_id: Uuid,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    pub filename: String,
    #[schema(value_type = Uuid)]
    pub uploaded_by: UserId,
    pub uploaded_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn sniffing_decides() {
        assert_eq!(AttachmentKind::check("image/png", PNG).unwrap(), AttachmentKind::Png);
        assert_eq!(
            AttachmentKind::check("application/pdf", PNG).unwrap_err().code,
            "attachment_type_mismatch"
        );
        assert_eq!(
            AttachmentKind::check("application/pdf", b"%PDF-1.7\n").unwrap(),
            AttachmentKind::Pdf
        );
        assert_eq!(
            AttachmentKind::check("text/plain; charset=utf-8", b"Clinic letter\n").unwrap(),
            AttachmentKind::Text
        );
        assert_eq!(
            AttachmentKind::check("text/plain", b"\x00\x01binary").unwrap_err().code,
            "attachment_type_mismatch"
        );
        assert_eq!(
            AttachmentKind::check("application/zip", b"PK\x03\x04").unwrap_err().code,
            "unsupported_attachment_type"
        );
        assert_eq!(AttachmentKind::check("image/png", b"").unwrap_err().code, "empty_attachment");
        // pydicom's test files: the preambles of CT_small and MR_small start like a TIFF.
        for name in ["CT_small.dcm", "MR_small.dcm", "examples_rgb_color.dcm"] {
            let path = format!("{}/tests/fixtures/dicom/{name}", env!("CARGO_MANIFEST_DIR"));
            let dicom = std::fs::read(&path).unwrap();
            for declared in ["application/dicom", "application/octet-stream", ""] {
                let kind = AttachmentKind::check(declared, &dicom);
                assert_eq!(kind.unwrap(), AttachmentKind::Dicom, "{name} as {declared:?}");
            }
            assert_eq!(
                AttachmentKind::check("image/tiff", &dicom).unwrap_err().code,
                "unsupported_attachment_type"
            );
        }
        // The marker alone is not DICOM: 128 zero bytes, DICM and garbage are refused.
        let mut fake = vec![0u8; 128];
        fake.extend_from_slice(b"DICMgarbage that is no file meta group");
        for declared in ["application/dicom", "application/octet-stream", "image/png"] {
            assert_eq!(AttachmentKind::check(declared, &fake).unwrap_err().code, "invalid_dicom");
        }
        let mut truncated = std::fs::read(format!(
            "{}/tests/fixtures/dicom/MR_small.dcm",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        truncated.truncate(600);
        assert_eq!(
            AttachmentKind::check("application/dicom", &truncated).unwrap_err().code,
            "invalid_dicom"
        );
        // Browsers know no type for .dcm files: the bytes decide.
        for undeclared in ["application/octet-stream", ""] {
            assert_eq!(
                AttachmentKind::check(undeclared, b"PK\x03\x04rest").unwrap_err().code,
                "unsupported_attachment_type"
            );
        }
    }

    #[test]
    fn filenames_are_cleaned() {
        assert_eq!(clean_filename(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_filename(Some("C:\\scans\\MRI lumbar.png")), "MRI lumbar.png");
        assert_eq!(clean_filename(Some("\"evil\";.png")), "evil.png");
        assert_eq!(clean_filename(None), "attachment");
        assert_eq!(clean_filename(Some(".hidden")), "hidden");
    }
}

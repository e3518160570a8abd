//! DICOM files (issue 18), read with dicom-rs: whether bytes are one, what a study says
//! of itself that identifies no one (the facts the viewer shows), and its frames decoded
//! to pixels. The header's patient fields are never read here.

use chrono::NaiveDate;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{PhotometricInterpretation, PixelDecoder};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use super::viewer::{Image, RenderError, Samples, Window, MAX_PIXELS};

/// The DICOM file marker: `DICM` after the 128-byte preamble.
pub fn has_marker(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM".as_slice())
}

/// The file, when the bytes after the preamble are one: the `DICM` marker, a readable
/// file meta group and a data set that reads to its end.
fn open(bytes: &[u8]) -> Option<DefaultDicomObject> {
    dicom_object::from_reader(bytes.get(128..)?).ok()
}

/// Whether the bytes are a DICOM file (see [`open`]), whatever the preamble looks like.
pub fn parses(bytes: &[u8]) -> bool {
    open(bytes).is_some()
}

/// A study's non-identifying header facts.
#[derive(Clone, Debug, PartialEq)]
pub struct StudyFacts {
    pub modality: Option<String>,
    pub body_part: Option<String>,
    pub study_date: Option<NaiveDate>,
    pub series_description: Option<String>,
    /// 1 for a single-frame image.
    pub frames: u32,
    pub rows: Option<u32>,
    pub columns: Option<u32>,
    /// `MONOCHROME2`, `RGB`, …
    pub photometric_interpretation: Option<String>,
    /// The stored default window, when the file has one.
    pub window: Option<Window>,
    /// Row and column spacing in millimetres, when the file gives it.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    pub transfer_syntax: String,
    /// Whether this build decodes the transfer syntax's pixel data (see [`SUPPORTED`]).
    pub renderable: bool,
}

/// The transfer syntaxes whose pixel data this build decodes (dicom-rs with its pure
/// Rust codecs): native (implicit and explicit VR, little and big endian), deflated,
/// RLE lossless, and JPEG baseline, extended and lossless. JPEG-LS, JPEG 2000 and
/// JPEG XL need C libraries this build leaves out: they are stored but not rendered.
pub const SUPPORTED: &str = "native, deflated, RLE lossless, JPEG baseline/extended/lossless";

/// The study's facts, or `None` when the bytes are not a DICOM file.
pub fn study_facts(bytes: &[u8]) -> Option<StudyFacts> {
    Some(facts_of(&open(bytes)?))
}

/// The facts of an opened file.
fn facts_of(file: &DefaultDicomObject) -> StudyFacts {
    let element = |name: &str| file.element_by_name_opt(name).ok().flatten();
    let text = |name: &str| {
        let value = element(name)?.to_str().ok()?;
        let value = value.trim().trim_end_matches('\0').trim();
        (!value.is_empty()).then(|| value.to_string())
    };
    let number = |name: &str| element(name)?.to_int::<u32>().ok();
    // A multi-valued window keeps its first (the default) value.
    let first = |name: &str| element(name)?.to_multi_float64().ok()?.first().copied();
    let spacing = element("PixelSpacing")
        .and_then(|e| e.to_multi_float64().ok())
        .and_then(|v| (v.len() == 2).then(|| [v[0], v[1]]));
    let window = match (first("WindowCenter"), first("WindowWidth")) {
        (Some(center), Some(width)) => Window::new(center, width),
        _ => None,
    };
    let transfer_syntax = file.meta().transfer_syntax().trim_end_matches('\0').to_string();
    StudyFacts {
        modality: text("Modality"),
        body_part: text("BodyPartExamined"),
        study_date: text("StudyDate").and_then(|d| NaiveDate::parse_from_str(&d, "%Y%m%d").ok()),
        series_description: text("SeriesDescription"),
        frames: number("NumberOfFrames").unwrap_or(1).max(1),
        rows: number("Rows"),
        columns: number("Columns"),
        photometric_interpretation: text("PhotometricInterpretation"),
        window,
        pixel_spacing_mm: spacing,
        renderable: decodes(&transfer_syntax),
        transfer_syntax,
    }
}

/// Whether this build decodes pixel data in the transfer syntax `uid`.
fn decodes(uid: &str) -> bool {
    TransferSyntaxRegistry.get(uid).is_some_and(|ts| ts.can_decode_all())
}

/// One frame's pixels as the modality gives them, before any window.
pub struct DecodedFrame {
    pub image: Image,
    /// The window stored in the file for this frame, if any.
    pub window: Option<Window>,
}

/// Decodes frame `frame` (from 0): monochrome frames as their modality values (the
/// rescale applied), colour frames as 8-bit RGB.
pub fn decode_frame(bytes: &[u8], frame: u32) -> Result<DecodedFrame, RenderError> {
    // Parsed once: the facts and the pixels come from the same object.
    let file = open(bytes).ok_or(RenderError::NotAnImage)?;
    let facts = facts_of(&file);
    if !facts.renderable {
        return Err(RenderError::UnsupportedTransferSyntax(facts.transfer_syntax));
    }
    if frame >= facts.frames {
        return Err(RenderError::FrameOutOfRange { frames: facts.frames });
    }
    let pixels = u64::from(facts.rows.unwrap_or(0)) * u64::from(facts.columns.unwrap_or(0));
    if pixels > MAX_PIXELS {
        return Err(RenderError::TooLarge);
    }
    let undecodable = |e: dicom_pixeldata::Error| RenderError::Undecodable(e.to_string());
    let pixels = file.decode_pixel_data_frame(frame).map_err(undecodable)?;
    let (rows, columns) = (pixels.rows(), pixels.columns());
    let samples = match (pixels.samples_per_pixel(), pixels.photometric_interpretation()) {
        (1, pi) => {
            let values = pixels.to_vec_frame::<f64>(0).map_err(undecodable)?;
            let inverted = *pi == PhotometricInterpretation::Monochrome1;
            Samples::Mono { values, inverted }
        }
        (3, _) => {
            // 16-bit colour keeps its top byte.
            let rgb = if pixels.bits_allocated() > 8 {
                let wide = pixels.to_vec_frame::<u16>(0).map_err(undecodable)?;
                wide.into_iter().map(|v| (v >> 8) as u8).collect()
            } else {
                pixels.to_vec_frame::<u8>(0).map_err(undecodable)?
            };
            Samples::Rgb(rgb)
        }
        (n, _) => return Err(RenderError::Undecodable(format!("{n} samples per pixel"))),
    };
    let expected = rows as usize * columns as usize * samples.channels();
    if samples.len() != expected {
        return Err(RenderError::Undecodable("the pixel data is the wrong length".into()));
    }
    Ok(DecodedFrame { image: Image { columns, rows, samples }, window: facts.window })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/dicom/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap()
    }

    #[test]
    fn the_facts_of_pydicoms_test_files() {
        let ct = study_facts(&fixture("CT_small.dcm")).unwrap();
        assert_eq!(ct.modality.as_deref(), Some("CT"));
        assert_eq!(ct.study_date, NaiveDate::from_ymd_opt(2004, 1, 19));
        assert_eq!((ct.frames, ct.rows, ct.columns), (1, Some(128), Some(128)));
        assert_eq!(ct.pixel_spacing_mm, Some([0.661468, 0.661468]));
        assert_eq!(ct.photometric_interpretation.as_deref(), Some("MONOCHROME2"));
        assert_eq!(ct.transfer_syntax, "1.2.840.10008.1.2.1");
        let mr = study_facts(&fixture("MR_small.dcm")).unwrap();
        assert_eq!(mr.window, Window::new(600.0, 1600.0));
        let us = study_facts(&fixture("examples_rgb_color.dcm")).unwrap();
        assert_eq!(us.modality.as_deref(), Some("US"));
        assert_eq!(us.photometric_interpretation.as_deref(), Some("RGB"));
        assert_eq!((us.rows, us.columns, us.pixel_spacing_mm), (Some(240), Some(320), None));
        // Nothing of the patient: their names are "CompressedSamples^…".
        for facts in [ct, mr, us] {
            let json = format!("{facts:?}");
            assert!(!json.contains("CompressedSamples") && !json.contains("1CT1"), "{json}");
        }
        let mut fake = vec![0u8; 128];
        fake.extend_from_slice(b"DICMgarbage");
        assert!(has_marker(&fake) && study_facts(&fake).is_none());
    }
}

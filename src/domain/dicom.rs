//! DICOM files (issue 18): whether bytes are one, and what a study says of itself that
//! identifies no one (the facts the viewer shows), read with dicom-rs. The header's
//! patient fields are never read here.

use chrono::NaiveDate;
use dicom_object::DefaultDicomObject;
use serde::Serialize;

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
#[derive(Clone, Debug, PartialEq, Serialize)]
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
    pub window_center: Option<f64>,
    pub window_width: Option<f64>,
    /// Row and column spacing in millimetres, when the file gives it.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    pub transfer_syntax: String,
}

/// The study's facts, or `None` when the bytes are not a DICOM file.
pub fn study_facts(bytes: &[u8]) -> Option<StudyFacts> {
    let file = open(bytes)?;
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
    Some(StudyFacts {
        modality: text("Modality"),
        body_part: text("BodyPartExamined"),
        study_date: text("StudyDate").and_then(|d| NaiveDate::parse_from_str(&d, "%Y%m%d").ok()),
        series_description: text("SeriesDescription"),
        frames: number("NumberOfFrames").unwrap_or(1).max(1),
        rows: number("Rows"),
        columns: number("Columns"),
        photometric_interpretation: text("PhotometricInterpretation"),
        window_center: first("WindowCenter"),
        window_width: first("WindowWidth"),
        pixel_spacing_mm: spacing,
        transfer_syntax: file.meta().transfer_syntax().trim_end_matches('\0').to_string(),
    })
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
        assert_eq!((mr.window_center, mr.window_width), (Some(600.0), Some(1600.0)));
        let us = study_facts(&fixture("examples_rgb_color.dcm")).unwrap();
        assert_eq!(us.modality.as_deref(), Some("US"));
        assert_eq!(us.photometric_interpretation.as_deref(), Some("RGB"));
        assert_eq!((us.rows, us.columns, us.pixel_spacing_mm), (Some(240), Some(320), None));
        // Nothing of the patient: their names are "CompressedSamples^…".
        for facts in [ct, mr, us] {
            let json = serde_json::to_string(&facts).unwrap();
            assert!(!json.contains("CompressedSamples") && !json.contains("1CT1"), "{json}");
        }
        let mut fake = vec![0u8; 128];
        fake.extend_from_slice(b"DICMgarbage");
        assert!(has_marker(&fake) && study_facts(&fake).is_none());
    }
}

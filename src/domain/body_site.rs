//! The body-site vocabulary: where a case is, from a fixed list (it reaches trainees and
//! emails, so it never carries free text).

use serde::Serialize;

use super::parse::ParseError;

/// The part of the body the case is about, from a fixed vocabulary (it is shown to
/// trainees and named in emails, so it must never carry free text): an optional side
/// (`left`, `right`, `bilateral`) and a region, e.g. `lower back`, `left knee`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct BodySite(String);

impl BodySite {
    pub const REGIONS: [&'static str; 26] = [
        "neck",
        "upper back",
        "lower back",
        "back",
        "cervical spine",
        "thoracic spine",
        "lumbar spine",
        "sacroiliac joint",
        "chest wall",
        "shoulder",
        "shoulders",
        "elbow",
        "wrist",
        "hand",
        "hands",
        "hip",
        "hips",
        "knee",
        "knees",
        "ankle",
        "foot",
        "feet",
        "jaw",
        "pelvis",
        "widespread",
        "multiple sites",
    ];
    const SIDES: [&'static str; 3] = ["left", "right", "bilateral"];

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let site = raw.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        let region = Self::SIDES
            .iter()
            .find_map(|side| site.strip_prefix(side).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or(&site);
        if Self::REGIONS.contains(&region) {
            Ok(Self(site))
        } else {
            Err(ParseError::new(
                "invalid_body_site",
                "body_site",
                "must be a body region such as lower back or left knee",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A back or neck site (spinal levels and the sacroiliac joint included): the ones the
    /// STarT Back tool screens.
    pub fn is_spinal(&self) -> bool {
        const SPINAL: [&str; 8] = [
            "neck",
            "upper back",
            "lower back",
            "back",
            "cervical spine",
            "thoracic spine",
            "lumbar spine",
            "sacroiliac joint",
        ];
        SPINAL.iter().any(|s| self.0 == *s || self.0.ends_with(&format!(" {s}")))
    }
}

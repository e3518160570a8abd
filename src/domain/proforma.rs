//! The referral proforma (issue 15): when and from where the referral came, what has been
//! tried, imaging already done, the STarT Back score and the patient's agreement to be
//! discussed; and which of its fields a specialty requires. None of it is shown to trainees.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::body_site::BodySite;
use super::parse::{bounded_text, ParseError};
use super::time_window::parse_iso_date;

/// Defines a closed vocabulary: a `Copy` enum with its snake_case wire names, `as_str`,
/// `ALL` and `parse` (refused with `code` naming `field`).
macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident, $code:literal, $field:literal, { $($v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($v),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }

            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                Self::ALL.iter().copied().find(|v| v.as_str() == raw.trim()).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    ParseError::new($code, $field, format!("must be one of {}", names.join(", ")))
                })
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary!(
    /// Who referred the patient.
    ReferralSource, "invalid_referral_source", "referral_source", {
        Gp => "gp",
        FirstContactPractitioner => "first_contact_practitioner",
        Physiotherapist => "physiotherapist",
        ExtendedScopePractitioner => "extended_scope_practitioner",
        Consultant => "consultant",
        Other => "other",
    }
);

vocabulary!(
    /// Conservative care a patient may have tried before referral.
    CareKind, "invalid_conservative_care", "conservative_care", {
        Physiotherapy => "physiotherapy",
        ExerciseProgramme => "exercise_programme",
        ManualTherapy => "manual_therapy",
        Analgesia => "analgesia",
        Injection => "injection",
        Acupuncture => "acupuncture",
        PsychologicalTherapy => "psychological_therapy",
        PainManagementProgramme => "pain_management_programme",
        Orthotics => "orthotics",
        WeightManagement => "weight_management",
        Other => "other",
    }
);

vocabulary!(
    /// Imaging a patient may already have had.
    ImagingKind, "invalid_imaging", "imaging", {
        Xray => "xray",
        Mri => "mri",
        Ct => "ct",
        Ultrasound => "ultrasound",
        BoneScan => "bone_scan",
        Other => "other",
    }
);

vocabulary!(
    /// A proforma field a specialty may require.
    ProformaField, "invalid_proforma_field", "required", {
        ReferralSource => "referral_source",
        SymptomWeeks => "symptom_weeks",
        ConservativeCare => "conservative_care",
        Imaging => "imaging",
        MedicationTried => "medication_tried",
        StartBack => "start_back",
    }
);

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CareTried {
    pub kind: CareKind,
    pub weeks: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImagingDone {
    pub kind: ImagingKind,
    pub done_on: NaiveDate,
    pub summary: String,
}

/// The STarT Back Screening Tool: total 0–9, of which the psychosocial subscore 0–5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StartBack {
    pub total: u8,
    pub psychosocial: u8,
}

impl StartBack {
    /// The tool's risk group: low (total ≤ 3), high (psychosocial ≥ 4), else medium.
    pub fn risk(self) -> &'static str {
        match (self.total, self.psychosocial) {
            (0..=3, _) => "low",
            (_, 4..) => "high",
            _ => "medium",
        }
    }
}

/// The proforma as it arrives (and as it is stored, as JSON): plain values, parsed by
/// [`Proforma::parse`] so each refusal names its field.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ProformaRequest {
    pub referral_received_on: Option<String>,
    pub referral_source: Option<String>,
    pub symptom_weeks: Option<i64>,
    #[serde(default)]
    pub conservative_care: Vec<CareRequest>,
    #[serde(default)]
    pub imaging: Vec<ImagingRequest>,
    pub medication_tried: Option<String>,
    pub start_back: Option<StartBackRequest>,
    pub patient_agrees: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct CareRequest {
    pub kind: String,
    pub weeks: i64,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct ImagingRequest {
    pub kind: String,
    pub done_on: String,
    #[serde(default)]
    pub summary: String,
}

#[derive(Clone, Copy, Debug, Deserialize, utoipa::ToSchema)]
pub struct StartBackRequest {
    pub total: i64,
    pub psychosocial: i64,
}

/// A parsed proforma. It serialises in the request's shape (less the date and source,
/// which are columns of their own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Proforma {
    #[serde(skip)]
    pub referral_received_on: NaiveDate,
    #[serde(skip)]
    pub referral_source: Option<ReferralSource>,
    pub symptom_weeks: Option<u16>,
    pub conservative_care: Vec<CareTried>,
    pub imaging: Vec<ImagingDone>,
    pub medication_tried: Option<String>,
    pub start_back: Option<StartBack>,
    pub patient_agrees: bool,
}

fn weeks(raw: i64, field: String) -> Result<u16, ParseError> {
    u16::try_from(raw)
        .ok()
        .filter(|w| *w <= 1040)
        .ok_or_else(|| ParseError::new("invalid_weeks", field, "must be a number of weeks, 0-1040"))
}

fn past_date(raw: &str, field: String, today: NaiveDate) -> Result<NaiveDate, ParseError> {
    let date = parse_iso_date(raw).ok_or_else(|| {
        ParseError::new("invalid_date", field.clone(), "must be a date as YYYY-MM-DD")
    })?;
    if date > today {
        return Err(ParseError::new("date_in_future", field, "must not be in the future"));
    }
    Ok(date)
}

impl Proforma {
    /// Parses the proforma of a booking made `today`. The referral date defaults to
    /// today; the patient's agreement to be discussed is always required.
    pub fn parse(r: &ProformaRequest, today: NaiveDate) -> Result<Self, ParseError> {
        if r.patient_agrees != Some(true) {
            return Err(ParseError::new(
                "patient_agreement_required",
                "patient_agrees",
                "the patient must agree to their case being discussed at the MDT",
            ));
        }
        let received = match r.referral_received_on.as_deref() {
            Some(raw) => past_date(raw, "referral_received_on".into(), today)?,
            None => today,
        };
        let care = r.conservative_care.iter().enumerate().map(|(i, c)| {
            let kind = CareKind::parse(&c.kind)
                .map_err(|e| e.for_field(format!("conservative_care[{i}].kind")))?;
            Ok(CareTried { kind, weeks: weeks(c.weeks, format!("conservative_care[{i}].weeks"))? })
        });
        let imaging = r.imaging.iter().enumerate().map(|(i, m)| {
            let kind = ImagingKind::parse(&m.kind)
                .map_err(|e| e.for_field(format!("imaging[{i}].kind")))?;
            let done_on = past_date(&m.done_on, format!("imaging[{i}].done_on"), today)?;
            let summary = bounded_text(&m.summary, "imaging.summary", 500, true)
                .map_err(|e| e.for_field(format!("imaging[{i}].summary")))?;
            Ok(ImagingDone { kind, done_on, summary })
        });
        let start_back = r
            .start_back
            .map(|s| {
                let total = u8::try_from(s.total).ok().filter(|t| *t <= 9);
                let psychosocial = u8::try_from(s.psychosocial).ok().filter(|p| *p <= 5);
                match (total, psychosocial) {
                    (Some(total), Some(psychosocial)) if psychosocial <= total => {
                        Ok(StartBack { total, psychosocial })
                    }
                    _ => Err(ParseError::new(
                        "invalid_start_back",
                        "start_back",
                        "total must be 0-9 and the psychosocial subscore 0-5, at most the total",
                    )),
                }
            })
            .transpose()?;
        Ok(Proforma {
            referral_received_on: received,
            referral_source: r.referral_source.as_deref().map(ReferralSource::parse).transpose()?,
            symptom_weeks: r.symptom_weeks.map(|w| weeks(w, "symptom_weeks".into())).transpose()?,
            conservative_care: care.collect::<Result<_, ParseError>>()?,
            imaging: imaging.collect::<Result<_, ParseError>>()?,
            medication_tried: r
                .medication_tried
                .as_deref()
                .filter(|m| !m.trim().is_empty())
                .map(|m| bounded_text(m, "medication_tried", 500, true))
                .transpose()?,
            start_back,
            patient_agrees: true,
        })
    }

    /// A typical proforma, for demonstrations and tests: a GP referral a fortnight before
    /// `today`, sixteen weeks of symptoms, six weeks of physiotherapy, a medium-risk STarT
    /// Back score, the patient agreeing.
    pub fn example(today: NaiveDate) -> Proforma {
        Proforma {
            referral_received_on: today - chrono::Duration::days(14),
            referral_source: Some(ReferralSource::Gp),
            symptom_weeks: Some(16),
            conservative_care: vec![CareTried { kind: CareKind::Physiotherapy, weeks: 6 }],
            imaging: Vec::new(),
            medication_tried: None,
            start_back: Some(StartBack { total: 5, psychosocial: 2 }),
            patient_agrees: true,
        }
    }

    /// Whether `field` has been given.
    fn has(&self, field: ProformaField) -> bool {
        match field {
            ProformaField::ReferralSource => self.referral_source.is_some(),
            ProformaField::SymptomWeeks => self.symptom_weeks.is_some(),
            ProformaField::ConservativeCare => !self.conservative_care.is_empty(),
            ProformaField::Imaging => !self.imaging.is_empty(),
            ProformaField::MedicationTried => self.medication_tried.is_some(),
            ProformaField::StartBack => self.start_back.is_some(),
        }
    }

    /// `422 proforma_field_required` naming the first field `required` (a specialty's
    /// data) asks for and the booking lacks. A STarT Back score is asked for only for back
    /// and neck cases, the ones it screens.
    pub fn check_required(
        &self, required: &[ProformaField], site: &BodySite,
    ) -> Result<(), ParseError> {
        let applies = |f: &ProformaField| *f != ProformaField::StartBack || site.is_spinal();
        match required.iter().filter(|f| applies(f)).find(|f| !self.has(**f)) {
            None => Ok(()),
            Some(f) => Err(ParseError::new(
                "proforma_field_required",
                f.as_str(),
                format!("this specialty requires {} for this case", f.as_str().replace('_', " ")),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 6).unwrap()
    }

    fn back() -> ProformaRequest {
        ProformaRequest {
            referral_received_on: Some("2026-11-20".into()),
            referral_source: Some("gp".into()),
            symptom_weeks: Some(14),
            conservative_care: vec![CareRequest { kind: "physiotherapy".into(), weeks: 6 }],
            imaging: vec![ImagingRequest {
                kind: "mri".into(),
                done_on: "2026-10-01".into(),
                summary: "L4/5 disc bulge".into(),
            }],
            medication_tried: Some("naproxen".into()),
            start_back: Some(StartBackRequest { total: 6, psychosocial: 4 }),
            patient_agrees: Some(true),
        }
    }

    #[test]
    fn parses_a_full_proforma() {
        let p = Proforma::parse(&back(), today()).unwrap();
        assert_eq!(p.referral_received_on, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
        assert_eq!(p.referral_source, Some(ReferralSource::Gp));
        assert_eq!(p.start_back.unwrap().risk(), "high");
        assert_eq!(p.conservative_care[0].kind, CareKind::Physiotherapy);
    }

    #[test]
    fn refuses_bad_values_naming_the_field() {
        type Case = (fn(&mut ProformaRequest), &'static str, &'static str);
        let cases: [Case; 6] = [
            (|r| r.patient_agrees = Some(false), "patient_agreement_required", "patient_agrees"),
            (|r| r.patient_agrees = None, "patient_agreement_required", "patient_agrees"),
            (
                |r| r.referral_received_on = Some("2027-01-01".into()),
                "date_in_future",
                "referral_received_on",
            ),
            (
                |r| r.start_back = Some(StartBackRequest { total: 3, psychosocial: 4 }),
                "invalid_start_back",
                "start_back",
            ),
            (
                |r| r.conservative_care[0].kind = "reiki".into(),
                "invalid_conservative_care",
                "conservative_care[0].kind",
            ),
            (|r| r.imaging[0].done_on = "yesterday".into(), "invalid_date", "imaging[0].done_on"),
        ];
        for (change, code, field) in cases {
            let mut r = back();
            change(&mut r);
            let e = Proforma::parse(&r, today()).unwrap_err();
            assert_eq!((e.code, e.field.as_ref()), (code, field));
        }
    }

    #[test]
    fn start_back_is_required_only_for_spinal_sites() {
        let mut r = back();
        r.start_back = None;
        let p = Proforma::parse(&r, today()).unwrap();
        let required = [ProformaField::StartBack];
        let e = p.check_required(&required, &BodySite::parse("lumbar spine").unwrap()).unwrap_err();
        assert_eq!((e.code, e.field.as_ref()), ("proforma_field_required", "start_back"));
        assert!(p.check_required(&required, &BodySite::parse("left knee").unwrap()).is_ok());
        assert!(p.check_required(&[], &BodySite::parse("lower back").unwrap()).is_ok());
    }
}

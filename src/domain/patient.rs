//! One patient per NHS number: what a booking may do when its NHS number is already on
//! record with other details. An NHS number identifies one person, so a booking that
//! gives it another name or date of birth is a wrong-patient hazard unless someone who
//! may see the record confirms the change. Pure rules; the store applies them inside the
//! booking's transaction.

use serde::Serialize;

use super::case::PatientDetails;
pub use super::case::PatientUpdate;

/// What a booking does to the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reconciled {
    /// No record yet: this booking creates it.
    New,
    /// The record matches (names compared without regard to case).
    Same,
    /// The record takes the booking's name (and date of birth); `fields` say which changed.
    Updated { fields: Vec<&'static str> },
}

/// Why a booking's patient was refused: the record it disagrees with, and on what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientConflict {
    pub recorded: PatientDetails,
    pub fields: Vec<&'static str>,
}

/// The name and date of birth on record, as shown to someone who may see them.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedDetails {
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: chrono::NaiveDate,
}

impl From<&PatientDetails> for RecordedDetails {
    fn from(p: &PatientDetails) -> Self {
        Self {
            given_name: p.given_name.as_str().to_string(),
            family_name: p.family_name.as_str().to_string(),
            date_of_birth: p.date_of_birth,
        }
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// The fields in which `incoming` differs from `recorded` (`name`, `date_of_birth`).
pub fn differences(recorded: &PatientDetails, incoming: &PatientDetails) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if !same_name(recorded.given_name.as_str(), incoming.given_name.as_str())
        || !same_name(recorded.family_name.as_str(), incoming.family_name.as_str())
    {
        fields.push("name");
    }
    if recorded.date_of_birth != incoming.date_of_birth {
        fields.push("date_of_birth");
    }
    fields
}

/// Decides a booking's patient against the record for its NHS number.
pub fn reconcile(
    recorded: Option<&PatientDetails>, incoming: &PatientDetails, confirmed: PatientUpdate,
) -> Result<Reconciled, Box<PatientConflict>> {
    let Some(recorded) = recorded else {
        return Ok(Reconciled::New);
    };
    let fields = differences(recorded, incoming);
    let allowed = match confirmed {
        _ if fields.is_empty() => return Ok(Reconciled::Same),
        PatientUpdate::None => false,
        PatientUpdate::NameChange => !fields.contains(&"date_of_birth"),
        PatientUpdate::Correction => true,
    };
    if allowed {
        Ok(Reconciled::Updated { fields })
    } else {
        Err(Box::new(PatientConflict { recorded: recorded.clone(), fields }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NhsNumber, OdsCode, PersonName, Sex};

    fn patient(given: &str, family: &str, dob: &str) -> PatientDetails {
        PatientDetails {
            nhs_number: NhsNumber::parse("943 476 5919").unwrap(),
            given_name: PersonName::parse(given).unwrap(),
            family_name: PersonName::parse(family).unwrap(),
            date_of_birth: dob.parse().unwrap(),
            sex: Sex::Female,
            gp_practice_code: OdsCode::parse("A81001").unwrap(),
        }
    }

    #[test]
    fn a_new_number_creates_the_record_and_the_same_details_match_it() {
        let jo = patient("Jo", "Specimen", "1962-11-30");
        assert_eq!(reconcile(None, &jo, PatientUpdate::None), Ok(Reconciled::New));
        let shouted = patient("JO", "SPECIMEN", "1962-11-30");
        assert_eq!(reconcile(Some(&jo), &shouted, PatientUpdate::None), Ok(Reconciled::Same));
    }

    #[test]
    fn another_person_under_a_known_number_is_refused() {
        // The defect: 943 476 5919, Jo Specimen born 1962, booked again as someone born 1958.
        let jo = patient("Jo", "Specimen", "1962-11-30");
        let other = patient("Robin", "Other", "1958-02-01");
        let refused = reconcile(Some(&jo), &other, PatientUpdate::None).unwrap_err();
        assert_eq!(refused.fields, ["name", "date_of_birth"]);
        assert_eq!(refused.recorded, jo);
        // A confirmed name change does not change a date of birth.
        let refused = reconcile(Some(&jo), &other, PatientUpdate::NameChange).unwrap_err();
        assert_eq!(refused.fields, ["name", "date_of_birth"]);
        let typo = patient("Jo", "Specimen", "1962-11-03");
        assert!(reconcile(Some(&jo), &typo, PatientUpdate::NameChange).is_err());
        // Only a coordinator's correction does.
        assert_eq!(
            reconcile(Some(&jo), &typo, PatientUpdate::Correction),
            Ok(Reconciled::Updated { fields: vec!["date_of_birth"] })
        );
    }

    #[test]
    fn a_confirmed_name_change_updates_the_record() {
        let jo = patient("Jo", "Specimen", "1962-11-30");
        let married = patient("Jo", "Example", "1962-11-30");
        assert_eq!(
            reconcile(Some(&jo), &married, PatientUpdate::None).unwrap_err().fields,
            ["name"]
        );
        assert_eq!(
            reconcile(Some(&jo), &married, PatientUpdate::NameChange),
            Ok(Reconciled::Updated { fields: vec!["name"] })
        );
    }
}

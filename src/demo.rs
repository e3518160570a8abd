//! Demo data for a first run: one account per role, a weekly series per seeded
//! specialty, and a few booked cases with valid test NHS numbers. Only ever writes to a
//! database without accounts.

use chrono::{Datelike, Days, NaiveTime, Utc, Weekday};

use crate::domain::case::parse_date_of_birth;
use crate::domain::schedule::SessionPlan;
use crate::domain::{
    BodySite, ClinicalText, NewCase, NewSeries, NhsNumber, OdsCode, Password, PatientDetails,
    PersonName, Role, Sex, Specialty, Urgency, User,
};
use crate::routes::users::{create_account, ValidUser};
use crate::state::AppState;

/// The password of every demo account (printed at start-up; demo databases only).
pub const DEMO_PASSWORD: &str = "mdt-demo-password";

/// One printed demo login.
pub struct DemoLogin {
    pub role: Role,
    pub email: String,
}

/// Seeds the database if it has no accounts; returns the logins, or `None` if it
/// already had data and nothing was written.
pub async fn seed(state: &AppState) -> anyhow::Result<Option<Vec<DemoLogin>>> {
    if state.store.count_users().await? > 0 {
        return Ok(None);
    }
    let all: Vec<Specialty> =
        Specialty::SEEDED.iter().map(|s| Specialty::parse(s)).collect::<Result<_, _>>()?;
    let people = [
        (Role::Coordinator, "coordinator@demo.mdt.test", "Casey Coordinator"),
        (Role::Consultant, "consultant@demo.mdt.test", "Dr Morgan Consultant"),
        (Role::Practitioner, "physio@demo.mdt.test", "Pat Physiotherapist"),
        (Role::Trainee, "trainee@demo.mdt.test", "Tam Trainee"),
    ];
    let mut users: Vec<User> = Vec::new();
    for (role, email, name) in people {
        let valid = ValidUser {
            email: crate::domain::EmailAddress::parse(email)?,
            name: PersonName::parse(name)?,
            role,
            specialties: all.clone(),
            organisation: None,
            password: Password::parse(DEMO_PASSWORD)?,
        };
        users.push(
            create_account(state, valid, None, None).await.map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    let consultant = users[1].id;
    let physio = users[2].id;

    let today = Utc::now().date_naive();
    let next = |weekday: Weekday| {
        let ahead =
            (7 + weekday.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
        today.checked_add_days(Days::new(u64::from(ahead) + 7)).unwrap_or(today)
    };
    let series = [
        ("rheumatology", "Rheumatology MDT", Weekday::Tue, (12, 30), false),
        ("spinal", "Spinal MDT", Weekday::Wed, (8, 0), false),
        ("pain", "Pain MDT (teaching)", Weekday::Thu, (13, 0), true),
    ];
    let mut first_sessions = Vec::new();
    for (specialty, title, weekday, (h, m), teaching) in series {
        let (_, sessions) = state
            .store
            .create_series(NewSeries {
                plan: SessionPlan {
                    specialty: Specialty::parse(specialty)?,
                    title: title.to_string(),
                    duration_minutes: 90,
                    case_capacity: 8,
                    minutes_per_case: 10,
                    booking_cutoff_hours: 48,
                    chair_id: consultant,
                    teaching,
                },
                first_date: next(weekday),
                local_time: NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default(),
                weeks: 12,
            })
            .await?;
        first_sessions.extend(sessions.first().map(|s| s.id));
    }

    let cases = [
        ("9912003888", "Alex", "Example", "1971-03-14", Sex::Female, "lower back", Urgency::Routine,
         "Persistent lower back pain with leg symptoms despite 12 weeks of physiotherapy: MRI or spinal surgical opinion?"),
        ("9449305552", "Sam", "Sample", "1985-09-02", Sex::Male, "hands", Urgency::Urgent,
         "Symmetrical small-joint synovitis and raised CRP: start DMARDs or further imaging?"),
        ("9434765919", "Jo", "Specimen", "1962-11-30", Sex::Female, "neck", Urgency::Routine,
         "Chronic neck pain with poor sleep and low mood: pain management programme suitable?"),
    ];
    for (i, (nhs, given, family, dob, sex, site, urgency, question)) in
        cases.into_iter().enumerate()
    {
        let Some(&session_id) = first_sessions.get(i) else {
            break;
        };
        state
            .store
            .book_case(
                NewCase {
                    id: uuid::Uuid::new_v4(),
                    session_id,
                    referrer_id: physio,
                    patient: PatientDetails {
                        nhs_number: NhsNumber::parse(nhs)?,
                        given_name: PersonName::parse(given)?,
                        family_name: PersonName::parse(family)?,
                        date_of_birth: parse_date_of_birth(dob, today)?,
                        sex,
                        gp_practice_code: OdsCode::parse("A81001")?,
                    },
                    clinical_question: ClinicalText::parse(question, "clinical_question")?,
                    history: ClinicalText::parse(
                        "Seen in first-contact clinic; conservative care tried.",
                        "history",
                    )?,
                    urgency,
                    body_site: BodySite::parse(site)?,
                    free_text_identifies_patient: false,
                    proforma: crate::domain::proforma::Proforma::example(today),
                    idempotency_key: None,
                    patient_update: Default::default(),
                },
                crate::domain::NewAuditEvent::new("case_booked", "case").actor(physio),
                Vec::new(),
                Utc::now(),
            )
            .await?;
    }
    Ok(Some(users.iter().map(|u| DemoLogin { role: u.role, email: u.email.to_string() }).collect()))
}

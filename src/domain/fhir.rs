//! The FHIR R4 export of a case (DESIGN §4 flow 8, §6 `GET /api/cases/{id}/fhir`): a pure
//! function from the case, its session, its latest outcome version, its tracked actions and
//! the signer to a `Bundle` of type `collection`. No I/O and no access rules here: the
//! route decides who may export and audits it.
//!
//! Resources: `Patient` (NHS number), the registered GP practice as `Organization` (ODS
//! code), the MDT discussion as a virtual `Encounter`, one `ServiceRequest` per
//! investigation and per referral (its status following the tracked action), a `CarePlan`
//! for the management plan and the follow-up, and the signing consultant as
//! `Practitioner`. Every reference is a
//! `urn:uuid:` that is some entry's `fullUrl`, so the bundle is self-contained. Resource
//! ids are derived from the case id and version, so exporting the same version twice gives
//! the same ids.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::action::{decisions, statuses_for, Action, ActionStatus};
use super::case::{Case, CaseState, Sex, Urgency};
use super::live::Discussion;
use super::outcome::FollowUp;
use super::outcome::{InvestigationKind, OutcomeVersion, ReferralDestination};
use super::schedule::Session;
use super::user::User;

/// The `Content-Type` of a FHIR JSON response.
pub const FHIR_JSON: &str = "application/fhir+json";
/// NHS number identifier system (NHS England).
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// ODS organisation code identifier system (NHS England).
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const SNOMED: &str = "http://snomed.info/sct";
/// HL7 v3 ActCode, the code system of `Encounter.class`.
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// HL7 v3 ActPriority, the code system of `Encounter.priority`.
pub const ACT_PRIORITY: &str = "http://terminology.hl7.org/CodeSystem/v3-ActPriority";
/// This service's own code systems: every investigation kind and referral destination
/// has a code here (its wire spelling), with a SNOMED CT coding beside it where a
/// well-known concept exists.
pub const INVESTIGATION_KIND_SYSTEM: &str =
    "https://mdt-coordinator.example/fhir/CodeSystem/investigation-kind";
pub const REFERRAL_DESTINATION_SYSTEM: &str =
    "https://mdt-coordinator.example/fhir/CodeSystem/referral-destination";

/// SNOMED CT procedure concepts for investigation kinds, where one is well known.
/// Nerve conduction studies and DEXA carry only the local code (no concept id could be
/// confirmed from two independent sources).
pub fn investigation_snomed(kind: InvestigationKind) -> Option<(&'static str, &'static str)> {
    match kind {
        InvestigationKind::Mri => Some(("113091000", "Magnetic resonance imaging")),
        InvestigationKind::Xray => Some(("363680008", "Radiographic imaging procedure")),
        InvestigationKind::Ct => Some(("77477000", "Computerized axial tomography")),
        InvestigationKind::Ultrasound => Some(("16310003", "Diagnostic ultrasonography")),
        InvestigationKind::Bloods => Some(("396550006", "Blood test")),
        InvestigationKind::NerveConduction | InvestigationKind::Dexa | InvestigationKind::Other => {
            None
        }
    }
}

/// SNOMED CT "Referral to … service" concepts, where one is well known.
pub fn referral_snomed(destination: ReferralDestination) -> Option<(&'static str, &'static str)> {
    match destination {
        ReferralDestination::Orthopaedics => Some(("183545006", "Referral to orthopedic service")),
        ReferralDestination::Physiotherapy => {
            Some(("306170007", "Referral to physiotherapy service"))
        }
        _ => None,
    }
}

/// `ServiceRequest.category` for an investigation: imaging or laboratory (the R4
/// example value set `servicerequest-category`).
fn investigation_category(kind: InvestigationKind) -> Option<(&'static str, &'static str)> {
    match kind {
        InvestigationKind::Mri
        | InvestigationKind::Xray
        | InvestigationKind::Ct
        | InvestigationKind::Ultrasound
        | InvestigationKind::Dexa => Some(("363679005", "Imaging")),
        InvestigationKind::Bloods => Some(("108252007", "Laboratory procedure")),
        InvestigationKind::NerveConduction | InvestigationKind::Other => None,
    }
}

/// What one export is made from.
pub struct CaseExport<'a> {
    pub case: &'a Case,
    pub session: &'a Session,
    /// The latest version (a draft, the signed one, or the latest amendment).
    pub outcome: Option<&'a OutcomeVersion>,
    /// Who signed `outcome`, when it is signed.
    pub signer: Option<&'a User>,
    /// When the meeting discussed the case (`None` if it never took it up).
    pub discussion: Option<Discussion>,
    /// The case's tracked actions: each signed `ServiceRequest.status` follows its own.
    pub actions: &'a [Action],
    pub generated_at: DateTime<Utc>,
}

/// `Patient.gender` (administrative-gender: male | female | other | unknown).
pub fn gender(sex: Sex) -> &'static str {
    sex.as_str()
}

/// `Encounter.status` from the case's state.
pub fn encounter_status(state: CaseState) -> &'static str {
    match state {
        CaseState::AwaitingTriage | CaseState::Returned => "planned",
        CaseState::Booked | CaseState::Listed => "planned",
        CaseState::InDiscussion => "in-progress",
        CaseState::Discussed | CaseState::OutcomeSigned => "finished",
        CaseState::Deferred | CaseState::Withdrawn => "cancelled",
    }
}

/// `ServiceRequest.status` and `CarePlan.status` (request-status) from the version:
/// signed (including an amendment, which is always signed) is `active`, an unsigned draft
/// is `draft`. Only the latest version is exported, so a superseded one never appears.
pub fn request_status(version: &OutcomeVersion) -> &'static str {
    if version.is_signed() {
        "active"
    } else {
        "draft"
    }
}

/// `ServiceRequest.status` of one investigation or referral of `version`: a draft's is
/// `draft`; a signed one follows its tracked action. `requested` and `booked` are
/// `active` (to be done); `done`, `result_received` and `closed` are `completed` (R4:
/// "the activity described by the request has been fully completed": the scan was done
/// or the patient seen; reviewing the result is the MDT's work, not the order's);
/// `cancelled` is `revoked`. A signed version with no action (signed before actions were
/// tracked) is `active`.
pub fn service_request_status(
    version: &OutcomeVersion, action: Option<ActionStatus>,
) -> &'static str {
    match (version.is_signed(), action) {
        (false, _) => "draft",
        (true, None | Some(ActionStatus::Requested | ActionStatus::Booked)) => "active",
        (true, Some(ActionStatus::Done | ActionStatus::ResultReceived | ActionStatus::Closed)) => {
            "completed"
        }
        (true, Some(ActionStatus::Cancelled)) => "revoked",
    }
}

/// `ServiceRequest.priority` (request-priority).
pub fn priority(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::Routine => "routine",
        Urgency::Urgent => "urgent",
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

/// A stable id for one resource of this export.
fn resource_id(case: Uuid, version: u32, what: &str) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(case.as_bytes());
    hash.update(version.to_be_bytes());
    hash.update(what.as_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Collects entries and hands out their `urn:uuid:` addresses.
struct Entries {
    case: Uuid,
    version: u32,
    entries: Vec<Value>,
}

impl Entries {
    /// Adds `resource` (given its id and `resourceType`) and returns its reference.
    fn add(&mut self, what: &str, resource_type: &str, mut resource: Map<String, Value>) -> Value {
        let id = resource_id(self.case, self.version, what);
        let url = format!("urn:uuid:{id}");
        resource.insert("resourceType".into(), json!(resource_type));
        resource.insert("id".into(), json!(id.to_string()));
        self.entries.push(json!({ "fullUrl": url, "resource": Value::Object(resource) }));
        json!({ "reference": url })
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Builds the bundle. A case with no outcome yet exports its Patient, GP practice and
/// Encounter only.
pub fn case_bundle(export: &CaseExport<'_>) -> Value {
    let CaseExport { case, session, outcome, signer, discussion, generated_at, .. } = *export;
    let version = outcome.map_or(0, |v| v.version);
    let mut out = Entries { case: case.id, version, entries: Vec::new() };
    let p = &case.patient;
    let ods = p.gp_practice_code.as_str();

    let practice = out.add(
        "organization",
        "Organization",
        object(json!({
            "identifier": [{ "system": ODS_SYSTEM, "value": ods }],
        })),
    );
    let mut gp = practice.clone();
    gp["identifier"] = json!({ "system": ODS_SYSTEM, "value": ods });
    let patient = out.add(
        "patient",
        "Patient",
        object(json!({
            "identifier": [{ "system": NHS_NUMBER_SYSTEM, "value": p.nhs_number.as_str() }],
            "name": [{
                "use": "official",
                "family": p.family_name.as_str(),
                "given": [p.given_name.as_str()],
            }],
            "gender": gender(p.sex),
            "birthDate": p.date_of_birth.format("%Y-%m-%d").to_string(),
            "generalPractitioner": [gp],
        })),
    );

    let practitioner = signer.map(|s| {
        out.add(
            "practitioner",
            "Practitioner",
            object(json!({ "name": [{ "text": s.name.as_str() }] })),
        )
    });

    // The encounter is the case's discussion when it took place (its actual time, not
    // the session's schedule); until then, the session's planned slot.
    let period = match discussion {
        Some(Discussion { started_at, ended_at: Some(ended_at) }) => {
            json!({ "start": time(started_at), "end": time(ended_at) })
        }
        Some(Discussion { started_at, .. }) => json!({ "start": time(started_at) }),
        None => {
            let ends =
                session.starts_at + Duration::minutes(i64::from(session.plan.duration_minutes));
            json!({ "start": time(session.starts_at), "end": time(ends) })
        }
    };
    let mut encounter = object(json!({
        "status": encounter_status(case.state),
        "class": coding(ACT_CODE, "VR", "virtual"),
        "type": [{ "text": "Multidisciplinary team meeting" }],
        "serviceType": { "text": session.plan.specialty.as_str() },
        "subject": patient,
        "period": period,
        "reasonCode": [{ "text": case.clinical_question.as_str() }],
        "priority": {
            "coding": [coding(ACT_PRIORITY, urgency_act_code(case.urgency), urgency_act_display(case.urgency))]
        },
    }));
    if let Some(practitioner) = &practitioner {
        encounter.insert("participant".into(), json!([{ "individual": practitioner }]));
    }
    let encounter = out.add("encounter", "Encounter", encounter);

    if let Some(version) = outcome {
        let status = request_status(version);
        let authored = time(version.signed_at.unwrap_or(version.updated_at));
        let mut orders = Vec::new();
        let mut followed = statuses_for(&decisions(&version.body), export.actions).into_iter();
        let mut common = |priority_of: Urgency| {
            let order_status = service_request_status(version, followed.next().flatten());
            let mut r = object(json!({
                "status": order_status,
                "intent": "order",
                "priority": priority(priority_of),
                "subject": patient,
                "encounter": encounter,
                "authoredOn": authored,
            }));
            if let Some(p) = &practitioner {
                r.insert("requester".into(), p.clone());
            }
            r
        };
        for (i, inv) in version.body.investigations.iter().enumerate() {
            let mut codings =
                vec![coding(INVESTIGATION_KIND_SYSTEM, inv.kind.as_str(), inv.kind.label())];
            if let Some((code, display)) = investigation_snomed(inv.kind) {
                codings.push(coding(SNOMED, code, display));
            }
            let mut r = common(inv.urgency);
            if let Some((code, display)) = investigation_category(inv.kind) {
                r.insert("category".into(), json!([{ "coding": [coding(SNOMED, code, display)] }]));
            }
            r.insert("code".into(), json!({ "coding": codings, "text": inv.kind.label() }));
            if let Some(site) = &inv.site {
                r.insert("bodySite".into(), json!([{ "text": site.as_str() }]));
            }
            if let Some(notes) = &inv.notes {
                r.insert("note".into(), json!([{ "text": notes.as_str() }]));
            }
            orders.push(out.add(&format!("investigation-{i}"), "ServiceRequest", r));
        }
        for (i, referral) in version.body.referrals.iter().enumerate() {
            let d = referral.destination;
            let mut codings = vec![coding(REFERRAL_DESTINATION_SYSTEM, d.as_str(), d.label())];
            if let Some((code, display)) = referral_snomed(d) {
                codings.push(coding(SNOMED, code, display));
            }
            let mut r = common(referral.urgency);
            r.insert(
                "category".into(),
                json!([{ "coding": [coding(SNOMED, "3457005", "Patient referral")] }]),
            );
            r.insert(
                "code".into(),
                json!({ "coding": codings, "text": format!("Referral: {}", d.label()) }),
            );
            r.insert("reasonCode".into(), json!([{ "text": referral.reason.as_str() }]));
            orders.push(out.add(&format!("referral-{i}"), "ServiceRequest", r));
        }

        let plan = &version.body.management_plan;
        let mut activities: Vec<Value> =
            orders.iter().map(|order| json!({ "reference": order })).collect();
        activities.extend(plan.items.iter().map(
            |item| json!({ "detail": { "status": "not-started", "description": item.as_str() } }),
        ));
        match &version.body.follow_up {
            FollowUp::None => {}
            FollowUp::Review { weeks } => activities.push(json!({ "detail": {
                "status": "not-started",
                "description": format!("Clinic review in {weeks} weeks"),
                "scheduledString": format!("in {weeks} weeks"),
            }})),
            FollowUp::ReDiscuss { reason, .. } => activities.push(json!({ "detail": {
                "status": "scheduled",
                "description": format!("Re-discuss at a later MDT: {}", reason.as_str()),
            }})),
        }
        let mut care_plan = object(json!({
            "status": status,
            "intent": "plan",
            "title": "MDT management plan",
            "subject": patient,
            "encounter": encounter,
            "created": authored,
        }));
        if !plan.text.is_empty() {
            care_plan.insert("description".into(), json!(plan.text));
        }
        if let Some(p) = &practitioner {
            care_plan.insert("author".into(), p.clone());
        }
        if !activities.is_empty() {
            care_plan.insert("activity".into(), json!(activities));
        }
        out.add("care-plan", "CarePlan", care_plan);
    }

    json!({
        "resourceType": "Bundle",
        "id": resource_id(case.id, version, &format!("bundle-{}", time(generated_at))).to_string(),
        "meta": { "lastUpdated": time(generated_at) },
        "type": "collection",
        "timestamp": time(generated_at),
        "entry": out.entries,
    })
}

/// `Encounter.priority` from the v3 ActPriority codes (`R` routine, `UR` urgent).
fn urgency_act_code(u: Urgency) -> &'static str {
    match u {
        Urgency::Routine => "R",
        Urgency::Urgent => "UR",
    }
}

fn urgency_act_display(u: Urgency) -> &'static str {
    match u {
        Urgency::Routine => "routine",
        Urgency::Urgent => "urgent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::SessionPlan;
    use crate::domain::{
        BodySite, ClinicalText, EmailAddress, NhsNumber, OdsCode, OutcomeDraft, OutcomeRequest,
        PatientDetails, PersonName, Role, SessionState, Specialty, UserId,
    };
    use std::collections::HashSet;

    fn case(state: CaseState) -> Case {
        Case {
            id: Uuid::from_u128(7),
            session_id: Uuid::from_u128(8),
            referrer_id: UserId(Uuid::from_u128(9)),
            patient: PatientDetails {
                nhs_number: NhsNumber::parse("943 476 5919").unwrap(),
                given_name: PersonName::parse("Hermione").unwrap(),
                family_name: PersonName::parse("Quibble").unwrap(),
                date_of_birth: "1978-05-17".parse().unwrap(),
                sex: Sex::Female,
                gp_practice_code: OdsCode::parse("A81001").unwrap(),
            },
            clinical_question: ClinicalText::parse("Inflammatory back pain?", "q").unwrap(),
            history: ClinicalText::parse("Twelve weeks", "h").unwrap(),
            urgency: Urgency::Routine,
            body_site: BodySite::parse("lower back").unwrap(),
            free_text_identifies_patient: false,
            state,
            booked_at: "2026-01-01T09:00:00Z".parse().unwrap(),
            moved_from: None,
            needs_rebooking: false,
            follow_up_of: None,
            proforma: None,
            submitted_at: None,
            returned: None,
            standard_plan: None,
        }
    }

    fn session() -> Session {
        Session {
            id: Uuid::from_u128(8),
            series_id: None,
            plan: SessionPlan {
                specialty: Specialty::parse("rheumatology").unwrap(),
                title: "Rheumatology MDT".into(),
                duration_minutes: 90,
                case_capacity: 8,
                minutes_per_case: 10,
                booking_cutoff_hours: 48,
                chair_id: UserId(Uuid::from_u128(10)),
                teaching: false,
            },
            starts_at: "2026-01-13T12:30:00Z".parse().unwrap(),
            booked: 1,
            state: SessionState::Closed,
        }
    }

    fn signer() -> User {
        User {
            id: UserId(Uuid::from_u128(10)),
            email: EmailAddress::parse("chair@example.org").unwrap(),
            name: PersonName::parse("Dr Ada Chair").unwrap(),
            role: Role::Consultant,
            specialties: vec![Specialty::parse("rheumatology").unwrap()],
            organisation: None,
            active: true,
            must_change_password: false,
            created_at: Utc::now(),
        }
    }

    fn version(signed: bool) -> OutcomeVersion {
        let request: OutcomeRequest = serde_json::from_value(json!({
            "investigations": [
                {"kind": "mri", "site": "lower back", "urgency": "urgent", "notes": "Whole spine"},
                {"kind": "nerve_conduction", "urgency": "routine"}
            ],
            "referrals": [{"destination": "orthopaedics", "urgency": "routine", "reason": "Surgical opinion"}],
            "management_plan": {"text": "Graded exercise", "items": ["Review analgesia"]},
            "follow_up": {"kind": "review", "weeks": 6}
        }))
        .unwrap();
        let at: DateTime<Utc> = "2026-01-13T13:00:00Z".parse().unwrap();
        OutcomeVersion {
            case_id: Uuid::from_u128(7),
            version: 1,
            body: OutcomeDraft::try_from(request).unwrap(),
            author_id: UserId(Uuid::from_u128(10)),
            created_at: at,
            updated_at: at,
            signed_by: signed.then_some(UserId(Uuid::from_u128(10))),
            signed_at: signed.then_some(at),
            amendment_reason: None,
            supersedes: None,
            outside_meeting_reason: None,
        }
    }

    fn export(case: &Case, outcome: Option<&OutcomeVersion>, signer: Option<&User>) -> Value {
        case_bundle(&CaseExport {
            case,
            session: &session(),
            outcome,
            signer,
            discussion: None,
            actions: &[],
            generated_at: "2026-01-14T08:00:00Z".parse().unwrap(),
        })
    }

    fn resources<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == kind)
            .collect()
    }

    /// Every `reference` anywhere in the bundle names an entry's `fullUrl`.
    fn assert_references_resolve(bundle: &Value) {
        let urls: HashSet<&str> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["fullUrl"].as_str().unwrap())
            .collect();
        fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("reference") {
                        out.push(r);
                    }
                    m.values().for_each(|v| walk(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut refs = Vec::new();
        walk(bundle, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            assert!(urls.contains(r), "{r} does not resolve");
        }
    }

    #[test]
    fn signed_outcome_exports_every_resource_with_resolving_references() {
        let c = case(CaseState::OutcomeSigned);
        let v = version(true);
        let s = signer();
        let b = export(&c, Some(&v), Some(&s));
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "collection");
        assert_references_resolve(&b);
        let patient = resources(&b, "Patient")[0];
        assert_eq!(patient["identifier"][0]["system"], NHS_NUMBER_SYSTEM);
        assert_eq!(patient["identifier"][0]["value"], "9434765919");
        assert_eq!(patient["gender"], "female");
        assert_eq!(patient["birthDate"], "1978-05-17");
        let org = resources(&b, "Organization")[0];
        assert_eq!(org["identifier"][0]["system"], ODS_SYSTEM);
        let encounter = resources(&b, "Encounter")[0];
        assert_eq!(encounter["status"], "finished");
        assert_eq!(encounter["class"]["code"], "VR");
        let orders = resources(&b, "ServiceRequest");
        assert_eq!(orders.len(), 3);
        assert!(orders.iter().all(|o| o["status"] == "active" && o["intent"] == "order"));
        assert_eq!(orders[0]["priority"], "urgent");
        assert_eq!(orders[0]["code"]["coding"][1]["code"], "113091000");
        // No SNOMED concept for nerve conduction: the local code only.
        assert_eq!(orders[1]["code"]["coding"].as_array().unwrap().len(), 1);
        assert_eq!(orders[2]["code"]["coding"][1]["code"], "183545006");
        let plan = resources(&b, "CarePlan")[0];
        assert_eq!((&plan["status"], &plan["intent"]), (&json!("active"), &json!("plan")));
        assert_eq!(plan["description"], "Graded exercise");
        // Three orders, one plan item, one review.
        assert_eq!(plan["activity"].as_array().unwrap().len(), 5);
        assert_eq!(resources(&b, "Practitioner")[0]["name"][0]["text"], "Dr Ada Chair");
        // The same version exports with the same ids.
        assert_eq!(b, export(&c, Some(&v), Some(&s)));
    }

    #[test]
    fn a_draft_exports_as_draft_without_a_signer() {
        let c = case(CaseState::InDiscussion);
        let v = version(false);
        let b = export(&c, Some(&v), None);
        assert_references_resolve(&b);
        assert!(resources(&b, "ServiceRequest")
            .iter()
            .all(|o| o["status"] == "draft" && o.get("requester").is_none()));
        assert_eq!(resources(&b, "CarePlan")[0]["status"], "draft");
        assert!(resources(&b, "Practitioner").is_empty());
        assert_eq!(resources(&b, "Encounter")[0]["status"], "in-progress");
    }

    #[test]
    fn a_case_without_an_outcome_exports_patient_and_encounter() {
        let b = export(&case(CaseState::Listed), None, None);
        assert_references_resolve(&b);
        let kinds: Vec<&str> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["Organization", "Patient", "Encounter"]);
        assert_eq!(resources(&b, "Encounter")[0]["status"], "planned");
    }

    #[test]
    fn the_encounter_is_dated_by_the_discussion_not_the_schedule() {
        let c = case(CaseState::Discussed);
        let planned = export(&c, None, None);
        let period = &resources(&planned, "Encounter")[0]["period"];
        assert_eq!(period["start"], "2026-01-13T12:30:00Z");
        // Held 19 days early, 12 minutes long.
        let started_at: DateTime<Utc> = "2025-12-25T09:00:00Z".parse().unwrap();
        let held = case_bundle(&CaseExport {
            case: &c,
            session: &session(),
            outcome: None,
            signer: None,
            discussion: Some(Discussion {
                started_at,
                ended_at: Some(started_at + Duration::minutes(12)),
            }),
            actions: &[],
            generated_at: "2026-01-14T08:00:00Z".parse().unwrap(),
        });
        let period = &resources(&held, "Encounter")[0]["period"];
        assert_eq!(period["start"], "2025-12-25T09:00:00Z");
        assert_eq!(period["end"], "2025-12-25T09:12:00Z");
    }

    #[test]
    fn service_request_status_follows_the_tracked_action() {
        use crate::domain::action::{decisions, Action, ActionStatus, DueDays};
        let (c, v) = (case(CaseState::OutcomeSigned), version(true));
        let mut actions: Vec<Action> = decisions(&v.body)
            .iter()
            .map(|d| {
                let ids = (c.id, 1);
                Action::requested(
                    Uuid::new_v4(),
                    ids,
                    d,
                    c.referrer_id,
                    &DueDays::default(),
                    v.updated_at,
                )
            })
            .collect();
        let statuses = [ActionStatus::Done, ActionStatus::Cancelled, ActionStatus::Closed];
        for (a, s) in actions.iter_mut().zip(statuses) {
            a.status = s;
        }
        let b = case_bundle(&CaseExport {
            case: &c,
            session: &session(),
            outcome: Some(&v),
            signer: None,
            discussion: None,
            actions: &actions,
            generated_at: "2026-01-14T08:00:00Z".parse().unwrap(),
        });
        let got: Vec<&str> =
            resources(&b, "ServiceRequest").iter().map(|r| r["status"].as_str().unwrap()).collect();
        assert_eq!(got, ["completed", "revoked", "completed"]);
        assert_eq!(service_request_status(&version(false), Some(ActionStatus::Closed)), "draft");
        assert_eq!(service_request_status(&v, Some(ActionStatus::Booked)), "active");
    }
}

//! The letters a signed outcome makes (issue 16): the clinic letter to the GP and the
//! referrer and the patient's plain-language letter, composed from the signed version
//! and rendered to PDF (`pdf.rs`); composing is pure. `issue.rs` reads what the letters
//! need beyond the version and stores their PDFs.

pub mod issue;
mod pdf;

use chrono::{DateTime, Utc};

use crate::domain::letter::{plan_deliveries, Channel, LetterKind, PlannedDelivery, Practice};
use crate::domain::letter::{Recipient, SecureDomains};
use crate::domain::outcome::{FollowUp, InvestigationKind};
use crate::domain::schedule::CLINIC_TZ;
use crate::domain::NewMessage;
use crate::domain::{Case, OutcomeVersion, PersonName, Session, User};
use crate::mail::templates;

/// A letter before rendering: a title and its blocks.
pub struct Document {
    pub title: String,
    pub blocks: Vec<Block>,
}

pub enum Block {
    Heading(String),
    Para(String),
    Bullet(String),
}

/// Everything a letter says, read by the caller.
pub struct LetterFacts<'a> {
    pub case: &'a Case,
    /// The signed version the letter is made from.
    pub version: &'a OutcomeVersion,
    pub session: &'a Session,
    /// When the meeting discussed the case (as the referrer's email dates it).
    pub discussed_at: DateTime<Utc>,
    /// The session a `re_discuss` follow-up is booked into.
    pub follow_up_session: Option<&'a Session>,
    pub signer: &'a PersonName,
    pub referrer: Option<&'a User>,
    pub practice: Option<&'a Practice>,
    /// Who attended the session's live meeting: name and role.
    pub present: &'a [(String, &'static str)],
}

/// The letter of `kind` as PDF bytes.
pub fn render(kind: LetterKind, facts: &LetterFacts<'_>) -> Vec<u8> {
    let doc = match kind {
        LetterKind::Gp => gp_letter(facts),
        LetterKind::Patient => patient_letter(facts),
    };
    pdf::render(&doc)
}

/// One letter ready to store: its PDF, its deliveries, the emails carrying it (one per
/// email delivery, in order) and the notices that only say a letter is waiting.
pub struct Prepared {
    pub kind: LetterKind,
    pub pdf: Vec<u8>,
    pub deliveries: Vec<PlannedDelivery>,
    pub emails: Vec<NewMessage>,
    pub notices: Vec<NewMessage>,
}

/// Both letters of a signed version, with who gets them how (`plan_deliveries`): a
/// practice whose address is not on a secure domain is told a letter is waiting (the
/// referrer already is, by the outcome email).
pub fn prepare(facts: &LetterFacts<'_>, secure: &SecureDomains) -> Vec<Prepared> {
    let practice_email = facts.practice.and_then(|p| p.email.as_ref());
    let plan = plan_deliveries(practice_email, facts.referrer.map(|r| &r.email), secure);
    let amended = facts.version.supersedes.is_some();
    [LetterKind::Gp, LetterKind::Patient]
        .into_iter()
        .map(|kind| {
            let deliveries: Vec<PlannedDelivery> =
                plan.iter().filter(|d| d.kind == kind).cloned().collect();
            let emails = deliveries
                .iter()
                .filter(|d| d.channel == Channel::Email)
                .filter_map(|d| d.email.as_ref())
                .map(|to| {
                    templates::letter_attached(to, kind, facts.case, facts.version.version, amended)
                })
                .collect();
            let insecure_practice = deliveries
                .iter()
                .any(|d| d.recipient == Recipient::Practice && d.channel == Channel::Post);
            let notices = match (insecure_practice, practice_email) {
                (true, Some(to)) => vec![templates::letter_waiting(to, facts.case)],
                _ => Vec::new(),
            };
            Prepared { kind, pdf: render(kind, facts), deliveries, emails, notices }
        })
        .collect()
}

fn date(t: DateTime<Utc>) -> String {
    t.with_timezone(&CLINIC_TZ).format("%-d %B %Y").to_string()
}

fn date_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&CLINIC_TZ).format("%-d %B %Y at %H:%M").to_string()
}

/// The NHS number as printed on letters: 3-3-4 digits.
fn nhs_number(case: &Case) -> String {
    let n = case.patient.nhs_number.as_str();
    match (n.get(..3), n.get(3..6), n.get(6..)) {
        (Some(a), Some(b), Some(c)) => format!("{a} {b} {c}"),
        _ => n.to_string(),
    }
}

fn patient_name(case: &Case) -> String {
    format!("{} {}", case.patient.given_name.as_str(), case.patient.family_name.as_str())
}

fn amendment(facts: &LetterFacts<'_>, blocks: &mut Vec<Block>) {
    if let Some(previous) = facts.version.supersedes {
        let reason = facts.version.amendment_reason.as_deref().unwrap_or("not given");
        blocks.push(Block::Para(format!(
            "This letter replaces the letter for version {previous}: the outcome was amended \
             (version {}). Reason: {reason}",
            facts.version.version
        )));
    }
}

/// The clinic letter to the GP and the referrer: identifiers, the question, every
/// decision with its urgency, the plan, follow-up, who was present and who signed.
pub fn gp_letter(facts: &LetterFacts<'_>) -> Document {
    let (case, body) = (facts.case, &facts.version.body);
    let p = &case.patient;
    let mut blocks = Vec::new();
    let practice = match facts.practice {
        Some(pr) => format!("{} ({})", pr.name, pr.ods_code.as_str()),
        None => format!("GP practice {}", p.gp_practice_code.as_str()),
    };
    blocks.push(Block::Para(format!("To: {practice}")));
    if let Some(r) = facts.referrer {
        blocks.push(Block::Para(format!("Copy to: {} (referrer)", r.name.as_str())));
    }
    blocks.push(Block::Para(format!(
        "Date: {}",
        date(facts.version.signed_at.unwrap_or(facts.discussed_at))
    )));
    amendment(facts, &mut blocks);
    blocks.push(Block::Heading("Patient".into()));
    blocks.push(Block::Para(format!("Name: {}", patient_name(case))));
    blocks.push(Block::Para(format!("NHS number: {}", nhs_number(case))));
    blocks.push(Block::Para(format!("Date of birth: {}", p.date_of_birth.format("%-d %B %Y"))));
    blocks.push(Block::Para(format!("Sex: {}", p.sex.as_str())));
    blocks.push(Block::Heading("Meeting".into()));
    blocks.push(Block::Para(format!(
        "Discussed at {} on {} (UK time); {} referral, {}.",
        facts.session.plan.title,
        date_time(facts.discussed_at),
        case.urgency.as_str(),
        case.body_site.as_str()
    )));
    blocks.push(Block::Heading("Clinical question".into()));
    blocks.push(Block::Para(case.clinical_question.as_str().to_string()));
    blocks.push(Block::Heading("Investigations".into()));
    if body.investigations.is_empty() {
        blocks.push(Block::Bullet("None".into()));
    }
    for i in &body.investigations {
        let site = i.site.as_ref().map(|s| format!(" ({})", s.as_str())).unwrap_or_default();
        let notes = i.notes.as_ref().map(|n| format!(": {}", n.as_str())).unwrap_or_default();
        blocks.push(Block::Bullet(format!(
            "{}{site}, {}{notes}",
            i.kind.label(),
            i.urgency.as_str()
        )));
    }
    blocks.push(Block::Heading("Referrals".into()));
    if body.referrals.is_empty() {
        blocks.push(Block::Bullet("None".into()));
    }
    for r in &body.referrals {
        blocks.push(Block::Bullet(format!(
            "{}, {}: {}",
            r.destination.label(),
            r.urgency.as_str(),
            r.reason.as_str()
        )));
    }
    blocks.push(Block::Heading("Management plan".into()));
    if !body.management_plan.text.is_empty() {
        blocks.push(Block::Para(body.management_plan.text.clone()));
    }
    for item in &body.management_plan.items {
        blocks.push(Block::Bullet(item.as_str().to_string()));
    }
    blocks.push(Block::Heading("Follow-up".into()));
    blocks.push(Block::Para(follow_up(facts, false)));
    blocks.push(Block::Heading("Present".into()));
    if facts.present.is_empty() {
        blocks.push(Block::Bullet("Not recorded (decided outside the live meeting)".into()));
    }
    for (name, role) in facts.present {
        blocks.push(Block::Bullet(format!("{name}, {role}")));
    }
    blocks.push(Block::Heading("Signed".into()));
    let signed_at = facts.version.signed_at.map(date_time).unwrap_or_default();
    blocks.push(Block::Para(format!(
        "{}, consultant, on {signed_at} (UK time). Outcome version {}.",
        facts.signer.as_str(),
        facts.version.version
    )));
    Document { title: "MDT clinic letter".into(), blocks }
}

/// What the follow-up means, plainly for the patient.
fn follow_up(facts: &LetterFacts<'_>, plain: bool) -> String {
    match (&facts.version.body.follow_up, facts.follow_up_session) {
        (FollowUp::None, _) if plain => {
            "No further meeting about you is planned. Your family doctor will look after you."
                .into()
        }
        (FollowUp::None, _) => "None.".into(),
        (FollowUp::Review { weeks }, _) if plain => {
            format!("You will be seen again in clinic in about {weeks} weeks.")
        }
        (FollowUp::Review { weeks }, _) => format!("Review in clinic in {weeks} weeks."),
        (FollowUp::ReDiscuss { reason, .. }, session) => {
            let when = session.map(|s| format!(" on {}", date(s.starts_at))).unwrap_or_default();
            if plain {
                format!("The team of specialists will talk about your care again{when}.")
            } else {
                format!("To be discussed again{when}: {}", reason.as_str())
            }
        }
    }
}

/// An investigation as the patient's letter names it, without abbreviations.
fn plain_investigation(kind: InvestigationKind) -> &'static str {
    match kind {
        InvestigationKind::Mri => "A magnetic resonance imaging scan (a scan that uses magnets)",
        InvestigationKind::Xray => "An X-ray",
        InvestigationKind::Ct => "A computed tomography scan (a detailed X-ray scan)",
        InvestigationKind::Ultrasound => "An ultrasound scan",
        InvestigationKind::Bloods => "Blood tests",
        InvestigationKind::NerveConduction => {
            "Nerve conduction tests (tests of how your nerves work)"
        }
        InvestigationKind::Dexa => "A bone density scan",
        InvestigationKind::Other => "Another test",
    }
}

/// The patient's letter: plain language, no abbreviations, what happens next and who to
/// contact.
pub fn patient_letter(facts: &LetterFacts<'_>) -> Document {
    let (case, body) = (facts.case, &facts.version.body);
    let p = &case.patient;
    let mut blocks = Vec::new();
    blocks.push(Block::Para(format!("To: {}", patient_name(case))));
    blocks.push(Block::Para(format!("National Health Service number: {}", nhs_number(case))));
    blocks.push(Block::Para(format!("Date of birth: {}", p.date_of_birth.format("%-d %B %Y"))));
    blocks.push(Block::Para(format!(
        "Date: {}",
        date(facts.version.signed_at.unwrap_or(facts.discussed_at))
    )));
    amendment(facts, &mut blocks);
    blocks.push(Block::Para(format!("Dear {},", patient_name(case))));
    blocks.push(Block::Para(format!(
        "A team of specialists met on {} to talk about your care and agreed what should \
         happen next. This letter tells you what they decided.",
        date(facts.discussed_at)
    )));
    blocks.push(Block::Heading("Tests you will be offered".into()));
    if body.investigations.is_empty() {
        blocks.push(Block::Bullet("No new tests are needed.".into()));
    }
    for i in &body.investigations {
        let soon = if i.urgency.as_str() == "urgent" { ", soon" } else { "" };
        blocks.push(Block::Bullet(format!("{}{soon}", plain_investigation(i.kind))));
    }
    blocks.push(Block::Heading("Other teams who will see you".into()));
    if body.referrals.is_empty() {
        blocks.push(Block::Bullet("You are not being sent to another team.".into()));
    }
    for r in &body.referrals {
        let soon = if r.urgency.as_str() == "urgent" { ", soon" } else { "" };
        blocks.push(Block::Bullet(format!(
            "The {} team{soon}",
            r.destination.label().to_lowercase()
        )));
    }
    blocks.push(Block::Heading("Your plan".into()));
    if !body.management_plan.text.is_empty() {
        blocks.push(Block::Para(body.management_plan.text.clone()));
    }
    for item in &body.management_plan.items {
        blocks.push(Block::Bullet(item.as_str().to_string()));
    }
    blocks.push(Block::Heading("What happens next".into()));
    blocks.push(Block::Para(
        "The hospital or service will write to you or telephone you with the date of each \
         test or appointment."
            .into(),
    ));
    blocks.push(Block::Para(follow_up(facts, true)));
    blocks.push(Block::Heading("Who to contact".into()));
    let practice = facts
        .practice
        .map(|pr| pr.name.clone())
        .unwrap_or_else(|| "your family doctor's surgery".into());
    let mut contact = format!(
        "If you have questions about this letter, or your symptoms get worse, contact {practice}."
    );
    if let Some(r) = facts.referrer {
        contact.push_str(&format!(
            " The clinician who asked the team to see you is {} ({}); they have a copy of this letter.",
            r.name.as_str(),
            r.email.as_str()
        ));
    }
    blocks.push(Block::Para(contact));
    blocks.push(Block::Para(format!(
        "Yours sincerely,\n{}, consultant, for the team of specialists",
        facts.signer.as_str()
    )));
    Document { title: "About your care: what the team of specialists decided".into(), blocks }
}

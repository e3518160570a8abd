//! GP practices compared (issue 17), as pure rules: each practice's referrals (per 1,000
//! registered patients), triage returns, waits and outcome mix, folded from the store's
//! tallies grouped by practice, each beside the locality's median (the median over the
//! practices in the report); and a practice's one-page summary, which holds no patient
//! identifiers.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Serialize;

use super::measures::{median_of, per_thousand, percent};
use super::report::{Acc, Judging, ReportWindow, TallyRow, SIX_WEEKS_DAYS};
use super::specialty::Specialty;

/// The practices report: one row per practice with case rows in the window.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PracticeReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[schema(value_type = String)]
    pub time_zone: &'static str,
    #[schema(value_type = Vec<String>)]
    pub specialties: Vec<Specialty>,
    /// By ODS code.
    pub practices: Vec<PracticeFigures>,
    pub locality: Locality,
}

/// One practice's figures over the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PracticeFigures {
    pub ods_code: String,
    /// From the practices known by letters, if known.
    pub name: Option<String>,
    pub list_size: Option<u32>,
    /// Episodes begun: case rows not moved by a deferral and not follow-ups.
    pub referrals: u32,
    pub referrals_per_1000: Option<f64>,
    pub triage_decisions: u32,
    /// Accepted or listed at triage.
    pub accepted: u32,
    /// Returned as not ready.
    pub returned: u32,
    /// Returned, as a share of the triage decisions.
    pub returned_percent: Option<f64>,
    /// Case rows decided: discussed, listed, or decided outside the meeting.
    pub decided: u32,
    /// Calendar days from the referral to the first triage decision.
    pub median_days_to_triage: Option<f64>,
    /// Calendar days from the referral to the discussion.
    pub median_days_to_discussion: Option<f64>,
    pub p90_days_to_discussion: Option<i64>,
    pub within_6_weeks_percent: Option<f64>,
    pub outcomes: PracticeOutcomes,
}

/// A practice's outcome mix: signed outcomes, and the cases with an MRI requested,
/// discharged to the GP, or referred onward (per destination), with their shares of the
/// signed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PracticeOutcomes {
    pub signed: u32,
    pub mri_requested: u32,
    pub mri_requested_percent: Option<f64>,
    pub discharged_to_gp: u32,
    pub discharged_to_gp_percent: Option<f64>,
    pub onward_referral: u32,
    pub onward_referral_percent: Option<f64>,
    /// Onward referrals by destination.
    #[schema(value_type = BTreeMap<String, u32>)]
    pub referrals: BTreeMap<&'static str, u32>,
}

/// The locality: how many practices, and the median of each measure over them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Locality {
    pub practices: u32,
    pub median: LocalityMedians,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LocalityMedians {
    pub referrals: Option<f64>,
    pub referrals_per_1000: Option<f64>,
    pub returned_percent: Option<f64>,
    pub median_days_to_triage: Option<f64>,
    pub median_days_to_discussion: Option<f64>,
    pub within_6_weeks_percent: Option<f64>,
    pub mri_requested_percent: Option<f64>,
    pub discharged_to_gp_percent: Option<f64>,
    pub onward_referral_percent: Option<f64>,
}

/// What the practices report knows about practices besides the tallies.
#[derive(Default)]
pub struct PracticeDirectory {
    pub names: HashMap<String, String>,
    pub list_sizes: HashMap<String, u32>,
}

fn practice_figures(ods_code: &str, acc: &Acc, directory: &PracticeDirectory) -> PracticeFigures {
    let to_discussion = acc.referral_to_discussion();
    let within = to_discussion.at_most(SIX_WEEKS_DAYS);
    let t = &acc.triage;
    let o = &acc.outcomes;
    let list_size = directory.list_sizes.get(ods_code).copied();
    PracticeFigures {
        ods_code: ods_code.to_string(),
        name: directory.names.get(ods_code).cloned(),
        list_size,
        referrals: acc.counts.referrals,
        referrals_per_1000: per_thousand(acc.counts.referrals, list_size),
        triage_decisions: t.decisions,
        accepted: t.accepted + t.listed,
        returned: t.returned,
        returned_percent: percent(t.returned, t.decisions),
        decided: acc.decided,
        median_days_to_triage: acc.referral_to_triage().median(),
        median_days_to_discussion: to_discussion.median(),
        p90_days_to_discussion: to_discussion.percentile(90),
        within_6_weeks_percent: percent(within, to_discussion.count()),
        outcomes: PracticeOutcomes {
            signed: o.signed,
            mri_requested: o.mri_requested,
            mri_requested_percent: percent(o.mri_requested, o.signed),
            discharged_to_gp: o.discharged_to_gp,
            discharged_to_gp_percent: percent(o.discharged_to_gp, o.signed),
            onward_referral: o.onward_referral,
            onward_referral_percent: percent(o.onward_referral, o.signed),
            referrals: o.referrals.clone(),
        },
    }
}

/// The locality's medians over `practices`.
pub fn locality(practices: &[PracticeFigures]) -> Locality {
    let m = |f: fn(&PracticeFigures) -> Option<f64>| median_of(practices.iter().map(f));
    Locality {
        practices: practices.len() as u32,
        median: LocalityMedians {
            referrals: m(|p| Some(f64::from(p.referrals))),
            referrals_per_1000: m(|p| p.referrals_per_1000),
            returned_percent: m(|p| p.returned_percent),
            median_days_to_triage: m(|p| p.median_days_to_triage),
            median_days_to_discussion: m(|p| p.median_days_to_discussion),
            within_6_weeks_percent: m(|p| p.within_6_weeks_percent),
            mri_requested_percent: m(|p| p.outcomes.mri_requested_percent),
            discharged_to_gp_percent: m(|p| p.outcomes.discharged_to_gp_percent),
            onward_referral_percent: m(|p| p.outcomes.onward_referral_percent),
        },
    }
}

/// Folds tallies grouped by practice into the practices report (all specialties in
/// scope together).
pub fn practice_report(
    window: &ReportWindow, specialties: &[Specialty], tallies: &[TallyRow],
    directory: &PracticeDirectory, judging: &Judging<'_>,
) -> PracticeReport {
    let mut accs: BTreeMap<&str, Acc> = BTreeMap::new();
    for row in tallies {
        accs.entry(row.group.as_str()).or_default().add(&row.tally, row.n, judging);
    }
    let practices: Vec<PracticeFigures> =
        accs.iter().map(|(code, acc)| practice_figures(code, acc, directory)).collect();
    let mut specialties = specialties.to_vec();
    specialties.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    PracticeReport {
        from: window.from,
        to: window.to,
        time_zone: "Europe/London",
        specialties,
        locality: locality(&practices),
        practices,
    }
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A figure to one decimal place with its unit, or a dash when there is none.
fn shown(v: Option<f64>, unit: &str) -> String {
    v.map(|v| format!("{v:.1}{unit}")).unwrap_or_else(|| "–".to_string())
}

/// A practice's one-page summary as printable HTML: its figures beside the locality's
/// medians, for the window and specialties of `report`. Holds no patient identifiers:
/// counts, shares and day figures only. No script; styled by `/summary.css` (the site's
/// `style-src 'self'` policy forbids inline styles).
pub fn practice_summary_html(report: &PracticeReport, practice: &PracticeFigures) -> String {
    let l = &report.locality.median;
    let specialties: Vec<&str> = report.specialties.iter().map(|s| s.as_str()).collect();
    let rows: Vec<(&str, String, String)> = vec![
        ("Referrals", practice.referrals.to_string(), shown(l.referrals, "")),
        (
            "Referrals per 1,000 registered patients",
            shown(practice.referrals_per_1000, ""),
            shown(l.referrals_per_1000, ""),
        ),
        (
            "Returned as not ready (of triage decisions)",
            shown(practice.returned_percent, "%"),
            shown(l.returned_percent, "%"),
        ),
        (
            "Median days, referral to triage decision",
            shown(practice.median_days_to_triage, ""),
            shown(l.median_days_to_triage, ""),
        ),
        (
            "Median days, referral to discussion",
            shown(practice.median_days_to_discussion, ""),
            shown(l.median_days_to_discussion, ""),
        ),
        (
            "Discussed within 6 weeks of referral",
            shown(practice.within_6_weeks_percent, "%"),
            shown(l.within_6_weeks_percent, "%"),
        ),
        (
            "MRI requested (of signed outcomes)",
            shown(practice.outcomes.mri_requested_percent, "%"),
            shown(l.mri_requested_percent, "%"),
        ),
        (
            "Discharged to GP (of signed outcomes)",
            shown(practice.outcomes.discharged_to_gp_percent, "%"),
            shown(l.discharged_to_gp_percent, "%"),
        ),
        (
            "Onward referral (of signed outcomes)",
            shown(practice.outcomes.onward_referral_percent, "%"),
            shown(l.onward_referral_percent, "%"),
        ),
    ];
    let mut table = String::new();
    for (label, own, median) in rows {
        table.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>\n",
            esc(label),
            esc(&own),
            esc(&median)
        ));
    }
    let mut onward = String::new();
    for (destination, n) in &practice.outcomes.referrals {
        onward.push_str(&format!("<li>{}: {n}</li>", esc(&destination.replace('_', " "))));
    }
    let name = practice.name.as_deref().unwrap_or("GP practice");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n\
<title>{title}</title>\n<link rel=\"stylesheet\" href=\"/summary.css\">\n</head>\n\
<body class=\"summary\">\n<main>\n<h1>{title}</h1>\n<p>MSK MDT referrals from {name} ({code}), {from} to {to} (UK dates), \
{specialties}. Compared with the median of the {n} practices referring in the same period. \
No patient is identified in this summary.</p>\n\
<table><thead><tr><th scope=\"col\">Measure</th><th scope=\"col\">This practice</th>\
<th scope=\"col\">Locality median</th></tr></thead><tbody>\n{table}</tbody></table>\n\
<h2>Onward referrals by destination</h2><ul>{onward}</ul>\n\
<p>Referrals: {referrals}; triage decisions: {decisions} ({accepted} accepted, {returned} returned); \
decided: {decided}; signed outcomes: {signed}.</p>\n</main>\n</body>\n</html>\n",
        title = esc(&format!("Practice summary: {name}")),
        name = esc(name),
        code = esc(&practice.ods_code),
        from = report.from,
        to = report.to,
        specialties = esc(&specialties.join(", ")),
        n = report.locality.practices,
        referrals = practice.referrals,
        decisions = practice.triage_decisions,
        accepted = practice.accepted,
        returned = practice.returned,
        decided = practice.decided,
        signed = practice.outcomes.signed,
        onward = if onward.is_empty() { "<li>None</li>".to_string() } else { onward },
    )
}

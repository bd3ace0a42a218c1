//! The fleet report: every onboarded account against every control as they stand, the drift and
//! repairs over a period, and each account's history of checks, from the fleet's records
//! (`core::pipeline::fleet`). One self-contained HTML page (no scripts, nothing fetched), Markdown,
//! or the [`FleetReport`] itself as JSON.

use std::fmt::Write;

use assure_contract::RunInput;
use serde::{Deserialize, Serialize};

use crate::audit::report::{esc, md};
use crate::controls::baseline;
use crate::pipeline::checkpoint::Store;
use crate::pipeline::fleet::{self, Check, Failing};

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetReport {
    pub generated_at: String,
    /// The checks and drift since then (RFC 3339).
    pub since: String,
    /// The baseline the deployment asks for now.
    pub baseline: String,
    /// The columns: each control of the baseline, then the roles assure acts through.
    pub controls: Vec<String>,
    /// Worst first: the most controls failing, then not checked, then behind, then by id.
    pub accounts: Vec<AccountRow>,
}

/// One account's row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountRow {
    pub account: String,
    pub baseline: Option<String>,
    pub current: bool,
    pub last_run: String,
    pub last_checked: Option<String>,
    /// Per column, in [`FleetReport::controls`]' order: `holds`, `fails` or `unknown` (not
    /// checked since its last run, which held).
    pub states: Vec<String>,
    /// What fails now, with CIS ids.
    pub failing: Vec<Failing>,
    /// Each check of the period, oldest first: when, and how many controls failed.
    pub history: Vec<HistoryPoint>,
    /// Each drift of the period: when, and what.
    pub drift: Vec<Drifted>,
    /// The repair runs started in the period.
    pub repairs: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPoint {
    pub at: String,
    pub holds: bool,
    pub failing: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drifted {
    pub at: String,
    #[serde(flatten)]
    pub what: Failing,
    /// The repair run the check that found it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<String>,
}

/// The column of a catalogue id: its control's name, or `roles` for the roles' checks.
fn column(id: &str) -> String {
    crate::pipeline::catalogue::find(id)
        .and_then(|e| baseline::owner(e.step))
        .map(|c| c.name.to_owned())
        .unwrap_or_else(|| id.split('.').next().unwrap_or(id).to_owned())
}

/// The report from the fleet's records: `template` is the run the deployment would start now (for
/// the current baseline), `since` the start of the period.
pub async fn build(
    store: &Store,
    template: &RunInput,
    since: time::OffsetDateTime,
) -> Result<FleetReport, assure_contract::StepError> {
    use time::format_description::well_known::Rfc3339;

    let since = since.format(&Rfc3339).unwrap_or_default();
    let mut controls: Vec<String> = baseline::ALL.iter().map(|c| c.name.to_owned()).collect();
    controls.push("roles".to_owned());
    let mut accounts = Vec::new();
    for m in fleet::members(store).await? {
        let checks: Vec<Check> = fleet::checks(store, &m.account).await?;
        let latest = checks.last().filter(|c| fleet::later(&c.at, &m.note.at)).cloned();
        let failing = latest.as_ref().map(|c| c.failing.clone()).unwrap_or_default();
        let states = controls
            .iter()
            .map(|col| match &latest {
                Some(c) if c.error.is_some() => "unknown",
                Some(_) if failing.iter().any(|f| column(&f.control) == *col) => "fails",
                Some(_) => "holds",
                None => "unknown",
            })
            .map(str::to_owned)
            .collect();
        let in_period: Vec<&Check> = checks.iter().filter(|c| !fleet::later(&since, &c.at)).collect();
        accounts.push(AccountRow {
            account: m.account.to_string(),
            baseline: m.note.baseline.as_ref().map(|b| b.to_string()),
            current: !fleet::behind(&m, &fleet::desired(template, &m)),
            last_run: m.note.run_id.clone(),
            last_checked: latest.as_ref().map(|c| c.at.clone()),
            states,
            failing,
            history: in_period
                .iter()
                .map(|c| HistoryPoint { at: c.at.clone(), holds: c.holds, failing: c.failing.len() })
                .collect(),
            // Drift EventBridge refused is found again by the next check: counted there, unless
            // this is the last check.
            drift: in_period
                .iter()
                .enumerate()
                .filter(|(i, c)| c.notified || *i + 1 == in_period.len())
                .map(|(_, c)| c)
                .flat_map(|c| {
                    c.drifted.iter().map(|f| Drifted { at: c.at.clone(), what: f.clone(), repair: c.repair.clone() })
                })
                .collect(),
            repairs: in_period.iter().filter_map(|c| c.repair.clone()).collect(),
        });
    }
    let rank = |a: &AccountRow| {
        let fails = a.states.iter().filter(|s| *s == "fails").count();
        (std::cmp::Reverse(fails), a.last_checked.is_some(), a.current, a.account.clone())
    };
    accounts.sort_by_key(rank);
    Ok(FleetReport {
        generated_at: time::OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
        since,
        baseline: baseline::version(template).to_string(),
        controls,
        accounts,
    })
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1400px;padding:0 1rem;color:#1f2328}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
td.holds{background:#2da44e;color:#fff;text-align:center;font-weight:600}td.fails{background:#cf222e;color:#fff;text-align:center;font-weight:600}
td.unknown{background:#eaeef2;color:#57606a;text-align:center}.behind{color:#9a6700;font-weight:600}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #d0d7de;border-radius:.5rem;padding:.6rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.5rem}.muted{color:#57606a}
.dots span{display:inline-block;width:.8rem;height:.8rem;margin-right:2px;border-radius:2px}.dots .ok{background:#2da44e}.dots .no{background:#cf222e}
"#;

/// The report as one self-contained HTML page: the matrix first, coloured by state, worst first.
pub fn html(r: &FleetReport) -> String {
    let mut h = String::new();
    let failing = r.accounts.iter().filter(|a| a.states.iter().any(|s| s == "fails")).count();
    let behind = r.accounts.iter().filter(|a| !a.current).count();
    let drifts: usize = r.accounts.iter().map(|a| a.drift.len()).sum();
    let repairs: usize = r.accounts.iter().map(|a| a.repairs.len()).sum();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Account Assurance fleet report</title><style>{CSS}</style></head><body>\n\
         <h1>Account Assurance fleet report</h1>\
         <p class=\"muted\">Baseline <code>{base}</code> · since {since} · generated {gen}</p>\n\
         <div class=\"cards\"><div class=\"card\" id=\"holding\"><b>{hold}/{n}</b>accounts hold every control</div>\
         <div class=\"card\"><b>{behind}</b>behind the baseline</div>\
         <div class=\"card\"><b>{drifts}</b>drifts</div><div class=\"card\"><b>{repairs}</b>repairs</div></div>\n",
        base = esc(&r.baseline),
        since = esc(&r.since),
        gen = esc(&r.generated_at),
        hold = r.accounts.len() - failing,
        n = r.accounts.len(),
    );
    h.push_str("<h2>Accounts × controls</h2><table id=\"matrix\"><tr><th>account</th><th>baseline</th>");
    for c in &r.controls {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("<th>last checked</th><th>history</th></tr>\n");
    for a in &r.accounts {
        let version = a.baseline.as_deref().unwrap_or("-");
        let (class, note) = if a.current { ("", "") } else { ("behind", " (behind)") };
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td class=\"{class}\"><code>{}</code>{note}</td>",
            esc(&a.account),
            esc(version)
        );
        for (col, state) in r.controls.iter().zip(&a.states) {
            let why: Vec<String> = a
                .failing
                .iter()
                .filter(|f| column(&f.control) == *col)
                .map(|f| format!("{} in {} (CIS {})", f.control, f.region, f.cis.as_deref().unwrap_or("-")))
                .collect();
            let _ = write!(h, "<td class=\"{state}\" title=\"{}\">{state}</td>", esc(&why.join("; ")));
        }
        let _ = write!(h, "<td>{}</td><td class=\"dots\">", esc(a.last_checked.as_deref().unwrap_or("never")));
        for p in &a.history {
            let _ = write!(h, "<span class=\"{}\" title=\"{}\"></span>", if p.holds { "ok" } else { "no" }, esc(&p.at));
        }
        h.push_str("</td></tr>\n");
    }
    h.push_str("</table>\n<h2>What fails</h2><table id=\"failing\"><tr><th>account</th><th>control</th><th>CIS v7.0.0</th><th>region</th><th>resource</th><th>seen</th></tr>\n");
    for a in &r.accounts {
        for f in &a.failing {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&a.account),
                esc(&f.control),
                esc(f.cis.as_deref().unwrap_or("-")),
                esc(&f.region),
                esc(&f.resource),
                esc(&f.saw)
            );
        }
    }
    h.push_str("</table>\n<h2>Drift and repairs</h2><table id=\"drift\"><tr><th>when</th><th>account</th><th>control</th><th>CIS v7.0.0</th><th>region</th><th>repair run</th></tr>\n");
    let mut events: Vec<(&str, &AccountRow, &Drifted)> =
        r.accounts.iter().flat_map(|a| a.drift.iter().map(move |d| (d.at.as_str(), a, d))).collect();
    events.sort_by(|x, y| y.0.cmp(x.0));
    for (at, a, d) in events {
        let repair = d.repair.as_deref().unwrap_or("-");
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(at),
            esc(&a.account),
            esc(&d.what.control),
            esc(d.what.cis.as_deref().unwrap_or("-")),
            esc(&d.what.region),
            esc(repair)
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

/// The report as Markdown tables, for a ticket or a pull request.
pub fn markdown(r: &FleetReport) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# Account Assurance fleet report\n\nBaseline `{}` · since {} · generated {}\n",
        r.baseline, r.since, r.generated_at
    );
    let _ = writeln!(m, "| account | baseline | {} | last checked |", r.controls.join(" | "));
    let _ = writeln!(m, "|{}", " --- |".repeat(r.controls.len() + 3));
    for a in &r.accounts {
        let version = format!("{}{}", a.baseline.as_deref().unwrap_or("-"), if a.current { "" } else { " (behind)" });
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} |",
            a.account,
            md(&version),
            a.states.join(" | "),
            a.last_checked.as_deref().unwrap_or("never")
        );
    }
    m.push_str(
        "\n## What fails\n\n| account | control | CIS v7.0.0 | region | seen |\n| --- | --- | --- | --- | --- |\n",
    );
    for a in &r.accounts {
        for f in &a.failing {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} |",
                a.account,
                md(&f.control),
                f.cis.as_deref().unwrap_or("-"),
                f.region,
                md(&f.saw)
            );
        }
    }
    m
}

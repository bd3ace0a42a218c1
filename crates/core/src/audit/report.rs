//! Renders a run's audit record (`audit::Audit`) for people: one self-contained HTML file (inline
//! styles, no scripts, nothing fetched) or Markdown. The JSON form is the `Audit` itself.
//!
//! Every report has the same sections, in the same order: the run, the step × region matrix, the
//! evidence per control, the changes with before and after values, the timeline.

use std::fmt::Write;

use assure_contract::StepName;

use crate::audit::Audit;
use crate::pipeline::checkpoint::{Record, Status};

/// What a matrix cell shows.
pub struct Cell {
    /// `completed`, `failed`, `running`, `not-run` or `not-applicable` (a step that runs once, in
    /// the home region, seen from another region).
    pub class: &'static str,
    pub text: String,
}

/// The steps of the matrix: every step of an account's run but rollback, and rollback when the run
/// has rolled back.
pub fn matrix_steps(a: &Audit) -> Vec<StepName> {
    StepName::ALL
        .into_iter()
        .filter(|s| s.account_run())
        .filter(|s| *s != StepName::Rollback || a.records.iter().any(|r| r.step == StepName::Rollback))
        .collect()
}

pub fn cell(a: &Audit, step: StepName, region: &str) -> Cell {
    let applies = step.regional() || region == a.run.home_region.as_str();
    if !applies {
        return Cell { class: "not-applicable", text: "·".into() };
    }
    let Some(r) = a.record(step, region) else { return Cell { class: "not-run", text: "not run".into() } };
    let class = match r.status {
        Status::Completed => "completed",
        Status::Failed => "failed",
        Status::Running => "running",
    };
    let changes = r.output.as_ref().map_or(0, |o| o.changes.len());
    let secs = seconds(r).map(|s| format!(" {s:.1}s")).unwrap_or_default();
    let tries = if r.attempt > 1 { format!(" ×{}", r.attempt) } else { String::new() };
    Cell { class, text: format!("{class}{tries}{secs} Δ{changes}") }
}

fn seconds(r: &Record) -> Option<f64> {
    let p = |s: &str| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok();
    Some((p(r.finished_at.as_deref()?)? - p(&r.started_at)?).as_seconds_f64())
}

pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn pretty(v: &serde_json::Value) -> String {
    if v.is_null() {
        return "(none)".into();
    }
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn started(a: &Audit) -> &str {
    a.executions.first().map_or("", |e| e.started.as_str())
}

fn finished(a: &Audit) -> &str {
    a.executions.last().and_then(|e| e.stopped.as_deref()).unwrap_or("")
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#1f2328}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
#run th{width:14rem}
th{background:#f6f8fa}code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere;max-width:32rem}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;font-weight:600;white-space:nowrap}
.SUCCEEDED,.completed,.pass{background:#2da44e;color:#fff}.FAILED,.failed,.fail,.TIMED_OUT,.ABORTED{background:#cf222e;color:#fff}
.RUNNING,.running{background:#d4a72c;color:#1f2328}.not-run{background:#eaeef2;color:#57606a}.not-applicable{background:#fff;color:#8c959f;text-align:center}
#matrix td.cell{text-align:center;font-weight:600;white-space:nowrap}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #d0d7de;border-radius:.5rem;padding:.6rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.5rem}.muted{color:#57606a}
"#;

/// The report as one self-contained HTML page.
pub fn html(a: &Audit) -> String {
    let mut h = String::new();
    let run = &a.run;
    let passed = a.controls.iter().filter(|c| c.passed).count();
    let changes = a.changes().count();
    let failures: usize = a.failed_attempts().values().sum();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Account Assurance report: {acct} ({id})</title><style>{CSS}</style></head><body>\n\
         <h1>Account Assurance report</h1>\
         <p class=\"muted\">Account <code>{acct}</code> · run <code>{id}</code> · \
         <span id=\"status\" class=\"badge {status}\">{status}</span></p>\n",
        acct = esc(run.account.as_str()),
        id = esc(run.run_id.as_str()),
        status = esc(&a.status),
    );
    let _ = writeln!(
        h,
        "<div class=\"cards\">\
         <div class=\"card\" id=\"controls-count\"><b>{passed}/{total}</b>controls verified</div>\
         <div class=\"card\"><b>{changes}</b>changes made</div>\
         <div class=\"card\"><b>{failures}</b>failed attempts</div>\
         <div class=\"card\"><b>{execs}</b>executions</div></div>",
        total = a.controls.len(),
        execs = a.executions.len(),
    );

    h.push_str("<h2>Run</h2><table id=\"run\">");
    let regions: Vec<&str> = run.regions.iter().map(|r| r.as_str()).collect();
    for (k, v) in [
        ("Account", run.account.to_string()),
        ("Regions", regions.join(", ")),
        ("Home region", run.home_region.to_string()),
        ("Management account", run.org.management.to_string()),
        ("Logging account", run.org.logging.to_string()),
        ("Security account", run.org.security.to_string()),
        ("Role", run.role_name.clone()),
        ("Started", started(a).to_owned()),
        ("Finished", finished(a).to_owned()),
    ] {
        let _ = write!(h, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
    }
    h.push_str("</table>\n<table id=\"executions\"><tr><th>Execution</th><th>Status</th><th>Started</th><th>Stopped</th><th>Error</th></tr>");
    for e in &a.executions {
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td><span class=\"badge {s}\">{s}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.name),
            esc(&e.started),
            esc(e.stopped.as_deref().unwrap_or("")),
            esc(&format!("{} {}", e.error.as_deref().unwrap_or(""), e.cause.as_deref().unwrap_or(""))),
            s = esc(&e.status),
        );
    }
    h.push_str("</table>\n");

    h.push_str(
        "<h2>Steps × regions</h2><p class=\"muted\">Each cell: status, attempts (×N when more than one), \
         duration, changes (Δ). · marks a step that runs once, in the home region.</p><table id=\"matrix\"><tr><th>Step</th>",
    );
    for r in &regions {
        let _ = write!(h, "<th>{}</th>", esc(r));
    }
    h.push_str("</tr>");
    for step in matrix_steps(a) {
        let _ = write!(h, "<tr><th>{}</th>", step.as_str());
        for r in &regions {
            let c = cell(a, step, r);
            let _ = write!(h, "<td class=\"cell {}\">{}</td>", c.class, esc(&c.text));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>\n");

    h.push_str(
        "<h2>Evidence per control</h2><table id=\"evidence\"><tr><th>Control</th><th>Spec</th><th>CIS v7.0.0 (v3.0.0, v1.4.0)</th>\
         <th>Region</th><th>Resource</th><th>Result</th><th>Verified at</th></tr>",
    );
    if a.controls.is_empty() {
        h.push_str("<tr><td colspan=\"7\">No evidence: the run has not verified its controls.</td></tr>");
    }
    for c in &a.controls {
        let (class, word) = if c.passed { ("pass", "pass") } else { ("fail", "FAIL") };
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code>{}</td>\
             <td><span class=\"badge {class}\">{word}</span></td><td>{}</td></tr>",
            esc(&c.control),
            esc(&c.spec),
            esc(&c.cis.as_ref().map_or_else(|| "–".to_owned(), ToString::to_string)),
            esc(&c.region),
            esc(&c.resource),
            if c.passed { String::new() } else { format!("<br>{}", esc(&c.detail)) },
            esc(c.verified_at.as_deref().unwrap_or("not verified")),
        );
    }
    h.push_str("</table>\n");

    h.push_str(
        "<h2>Changes</h2><table id=\"changes\"><tr><th>Step</th><th>Region</th><th>Action</th><th>Resource</th>\
         <th>Before</th><th>After</th></tr>",
    );
    if changes == 0 {
        h.push_str("<tr><td colspan=\"6\">No changes: the account already met every control.</td></tr>");
    }
    for (r, c) in a.changes() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
            r.step.as_str(),
            esc(c.region.as_str()),
            esc(&c.action),
            esc(&c.resource),
            esc(&pretty(&c.before)),
            esc(&pretty(&c.after)),
        );
    }
    h.push_str("</table>\n");

    h.push_str(
        "<h2>Timeline</h2><table id=\"timeline\"><tr><th>At (UTC)</th><th>Source</th><th>Event</th><th>State / step</th>\
         <th>Region</th><th>Attempt</th><th>Detail</th></tr>",
    );
    for e in &a.timeline {
        let src = e.source_label();
        let class = match e.event.as_str() {
            "TaskFailed" | "TaskTimedOut" | "StepFailed" | "ExecutionFailed" => " class=\"fail\"",
            _ => "",
        };
        let _ = write!(
            h,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.at),
            esc(src),
            esc(&e.event),
            esc(e.state.as_deref().or(e.step.as_deref()).unwrap_or("")),
            esc(e.region.as_deref().unwrap_or("")),
            e.attempt.map(|n| n.to_string()).unwrap_or_default(),
            esc(&e.detail),
        );
    }
    h.push_str("</table>\n<p class=\"muted\">Generated by assure from the run's execution history and checkpoint records.</p></body></html>\n");
    h
}

/// Escapes a table cell for Markdown.
pub(crate) fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report as Markdown (GitHub flavoured tables).
pub fn markdown(a: &Audit) -> String {
    let mut m = String::new();
    let run = &a.run;
    let passed = a.controls.iter().filter(|c| c.passed).count();
    let regions: Vec<&str> = run.regions.iter().map(|r| r.as_str()).collect();
    let _ = writeln!(m, "# Account Assurance report: {}\n", run.account);
    let _ = writeln!(m, "| | |\n|---|---|");
    for (k, v) in [
        ("Run", run.run_id.to_string()),
        ("Status", a.status.clone()),
        ("Account", run.account.to_string()),
        ("Regions", regions.join(", ")),
        ("Home region", run.home_region.to_string()),
        (
            "Organization",
            format!("management {}, logging {}, security {}", run.org.management, run.org.logging, run.org.security),
        ),
        ("Started", started(a).to_owned()),
        ("Finished", finished(a).to_owned()),
        ("Controls", format!("{passed}/{} verified", a.controls.len())),
        ("Changes", a.changes().count().to_string()),
        (
            "Executions",
            a.executions.iter().map(|e| format!("{} ({})", e.name, e.status)).collect::<Vec<_>>().join(", "),
        ),
    ] {
        let _ = writeln!(m, "| {k} | {} |", md(&v));
    }

    let _ = writeln!(m, "\n## Steps × regions\n");
    let _ = writeln!(m, "| Step | {} |", regions.join(" | "));
    let _ = writeln!(m, "|---|{}", "---|".repeat(regions.len()));
    for step in matrix_steps(a) {
        let cells: Vec<String> = regions.iter().map(|r| md(&cell(a, step, r).text)).collect();
        let _ = writeln!(m, "| {} | {} |", step.as_str(), cells.join(" | "));
    }

    let _ = writeln!(m, "\n## Evidence per control\n");
    let _ = writeln!(
        m,
        "| Control | Spec | CIS v7.0.0 (v3.0.0, v1.4.0) | Region | Resource | Result | Verified at |\n|---|---|---|---|---|---|---|"
    );
    for c in &a.controls {
        let result = if c.passed { "pass".to_owned() } else { format!("**FAIL**: {}", c.detail) };
        let _ = writeln!(
            m,
            "| `{}` | {} | {} | {} | `{}` | {} | {} |",
            c.control,
            md(&c.spec),
            c.cis.as_ref().map_or_else(|| "–".to_owned(), ToString::to_string),
            c.region,
            md(&c.resource),
            md(&result),
            c.verified_at.as_deref().unwrap_or("not verified")
        );
    }

    let _ = writeln!(m, "\n## Changes\n");
    let _ = writeln!(m, "| Step | Region | Action | Resource | Before | After |\n|---|---|---|---|---|---|");
    for (r, c) in a.changes() {
        let j =
            |v: &serde_json::Value| if v.is_null() { "(none)".to_owned() } else { format!("`{}`", md(&v.to_string())) };
        let _ = writeln!(
            m,
            "| {} | {} | {} | `{}` | {} | {} |",
            r.step.as_str(),
            c.region,
            c.action,
            md(&c.resource),
            j(&c.before),
            j(&c.after)
        );
    }

    let _ = writeln!(m, "\n## Timeline\n");
    let _ = writeln!(
        m,
        "| At (UTC) | Source | Event | State / step | Region | Attempt | Detail |\n|---|---|---|---|---|---|---|"
    );
    for e in &a.timeline {
        let src = e.source_label();
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} |",
            e.at,
            md(src),
            e.event,
            md(e.state.as_deref().or(e.step.as_deref()).unwrap_or("")),
            e.region.as_deref().unwrap_or(""),
            e.attempt.map(|n| n.to_string()).unwrap_or_default(),
            md(&e.detail)
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html_and_markdown() {
        assert_eq!(esc("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
        assert_eq!(md("a|b\nc"), "a\\|b c");
    }
}

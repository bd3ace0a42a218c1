//! `assure runs`: list, show, history, report, retry and roll back runs.

use std::process::ExitCode;

use anyhow::Context;
use assure_contract::{AccountId, RunId, RunInput, StepError};
use assure_core::aws::Aws;
use assure_core::pipeline::{lock, runs};
use clap::{Subcommand, ValueEnum};

use crate::global::{connect, Global, Output};
use crate::onboard::follow;

#[derive(Subcommand)]
pub(crate) enum RunsCommand {
    /// Resume a failed run: completed steps re-check read-only; the failed step and later ones act.
    ///
    /// Example: assure runs retry onboard-123456789012-1700000000
    Retry {
        /// The run id (as `assure onboard` printed it).
        run: String,
        /// Give up following the run after this many seconds (the run itself goes on).
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// List runs, newest first.
    ///
    /// Example: assure runs list --account 123456789012 --status failed --output json
    List {
        /// Only this account's runs.
        #[arg(long)]
        account: Option<String>,
        /// Only runs whose latest execution has this status (Step Functions' execution statuses).
        #[arg(long, value_parser = ["running", "succeeded", "failed", "timed_out", "aborted", "pending_redrive"], ignore_case = true)]
        status: Option<String>,
        /// Only runs started since then: a duration back from now (30m, 24h, 7d) or a date
        /// (2026-11-29 or 2026-11-29T12:00:00Z).
        #[arg(long)]
        since: Option<String>,
    },
    /// One run as a step × region matrix from its checkpoints: status, attempts, duration, changes.
    ///
    /// Example: assure runs show onboard-123456789012-1700000000
    Show {
        /// The run id.
        run: String,
    },
    /// A run's timeline: every state entered and exited, every attempt with its error, every change
    /// with its before and after values, from the execution history of each execution of the run
    /// (the first and every retry) merged with the checkpoint records.
    ///
    /// Example: assure runs history onboard-123456789012-1700000000 --output json | jq '.[] | select(.event == "TaskFailed")'
    History {
        /// The run id.
        run: String,
    },
    /// The audit report of a run: the evidence per control (spec bullet, CIS id, resource, verified
    /// at), the step × region matrix, the changes and the timeline.
    ///
    /// HTML is one self-contained file (no scripts, nothing fetched) to hand to an auditor.
    ///
    /// Example: assure runs report onboard-123456789012-1700000000 --format html --out report.html
    Report {
        /// The run id.
        run: String,
        /// The report's format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
        format: ReportFormat,
        /// Write the report to this file instead of standard output.
        #[arg(long, short)]
        out: Option<std::path::PathBuf>,
    },
    /// Roll a run back: compensate its completed steps in reverse order, from their snapshots.
    ///
    /// The account's configuration afterwards equals its configuration before onboarding, except
    /// what cannot be restored, which is reported by name. Rolling back a completed run offboards
    /// the account. One compensation (a control in a region) failing does not stop the others;
    /// each is reported restored, not restorable, or failed with its error. Rolling the run back
    /// again runs only what failed. Exit status: 0 done, 1 a compensation failed, 2 no such run.
    ///
    /// Example: assure runs rollback onboard-123456789012-1700000000
    Rollback {
        /// The run id.
        run: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ReportFormat {
    /// One self-contained page.
    Html,
    /// The audit record, for scripts.
    Json,
    /// Markdown tables, for a ticket or a pull request.
    Md,
}

pub(crate) async fn run(g: &Global, cmd: RunsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RunsCommand::Retry { run, timeout } => retry_cmd(g, &run, timeout).await,
        RunsCommand::Rollback { run } => rollback_cmd(g, &run).await,
        RunsCommand::List { account, status, since } => {
            list_cmd(g, account.as_deref(), status.as_deref(), since.as_deref()).await
        }
        RunsCommand::History { run } => history_cmd(g, &run).await,
        RunsCommand::Report { run, format, out } => report_cmd(g, &run, format, out).await,
        RunsCommand::Show { run } => show_cmd(g, &run).await,
    }
}

/// `--since`: a duration back from now (`30m`, `24h`, `7d`) or a date, as a time.
pub(crate) fn parse_since(s: &str, now: time::OffsetDateTime) -> Result<time::OffsetDateTime, StepError> {
    use time::format_description::well_known::Rfc3339;
    let bad = || {
        StepError::invalid_input(format!(
            "--since: {s:?} is neither a duration (30m, 24h, 7d) nor a date (2026-11-29, 2026-11-29T12:00:00Z)"
        ))
    };
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    if let Ok(d) = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc());
    }
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let d = match unit {
        "s" => time::Duration::seconds(n),
        "m" => time::Duration::minutes(n),
        "h" => time::Duration::hours(n),
        "d" => time::Duration::days(n),
        "w" => time::Duration::weeks(n),
        _ => return Err(bad()),
    };
    Ok(now - d)
}

async fn list_cmd(
    g: &Global,
    account: Option<&str>,
    status: Option<&str>,
    since: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if let Some(a) = account {
        a.parse::<AccountId>().map_err(|e| StepError::invalid_input(format!("--account: {}", e.message)))?;
    }
    let since = since.map(|s| parse_since(s, time::OffsetDateTime::now_utc())).transpose()?;
    let aws = connect(g).await?;
    let mut runs = runs::list(&aws, account, status).await?;
    if let Some(since) = since {
        let rfc = time::format_description::well_known::Rfc3339;
        runs.retain(|r| time::OffsetDateTime::parse(&r.started, &rfc).is_ok_and(|t| t >= since));
    }
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    } else {
        println!("{:<40} {:<14} {:<10} {:<10} STARTED", "RUN", "ACCOUNT", "STATUS", "EXECUTIONS");
        for r in &runs {
            let acct = r.account.as_deref().unwrap_or("-");
            println!("{:<40} {acct:<14} {:<10} {:<10} {}", r.run_id, r.status, r.executions, r.started);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn show_cmd(g: &Global, run_id: &str) -> anyhow::Result<ExitCode> {
    let run_id: RunId = run_id.parse()?;
    let aws = connect(g).await?;
    let run = assure_core::pipeline::runs::input_of(&aws, run_id.as_str()).await?;
    let mut records = assure_core::pipeline::checkpoint::Store::new(&aws).list(run_id.as_str()).await?;
    let order = |s: assure_contract::StepName| assure_contract::StepName::ALL.iter().position(|x| *x == s).unwrap_or(0);
    records.sort_by(|a, b| (order(a.step), a.region.as_str()).cmp(&(order(b.step), b.region.as_str())));
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"run": run, "records": records}))?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "run {} for account {} in {}",
        run.run_id,
        run.account,
        run.regions.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
    );
    println!();
    println!("{:<16} {:<15} {:<10} {:>8} {:>9} {:>8}", "STEP", "REGION", "STATUS", "ATTEMPTS", "SECONDS", "CHANGES");
    for r in &records {
        let secs = duration(&r.started_at, r.finished_at.as_deref());
        let changes = r.output.as_ref().map_or(0, |o| o.changes.len());
        let status = serde_json::to_value(r.status)?.as_str().unwrap_or("").to_owned();
        println!(
            "{:<16} {:<15} {:<10} {:>8} {:>9} {:>8}",
            r.step.as_str(),
            r.region.as_str(),
            status,
            r.attempt,
            secs,
            changes
        );
        if let Some(e) = &r.error {
            println!("{:<16} {:<15} {}", "", "", e);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn history_cmd(g: &Global, run_id: &str) -> anyhow::Result<ExitCode> {
    let run_id: RunId = run_id.parse()?;
    let aws = connect(g).await?;
    let audit = assure_core::audit::load(&aws, run_id.as_str()).await?;
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&audit.timeline)?);
        return Ok(ExitCode::SUCCESS);
    }
    let w = audit.timeline.iter().map(|e| e.source_label().len()).max().unwrap_or(10).max(10);
    println!(
        "{:<24} {:<w$} {:<20} {:<16} {:<14} {:>3}  DETAIL",
        "AT (UTC)", "SOURCE", "EVENT", "STATE/STEP", "REGION", "TRY"
    );
    for e in &audit.timeline {
        println!(
            "{:<24} {:<w$} {:<20} {:<16} {:<14} {:>3}  {}",
            e.at,
            e.source_label(),
            e.event,
            e.state.as_deref().or(e.step.as_deref()).unwrap_or(""),
            e.region.as_deref().unwrap_or(""),
            e.attempt.map(|n| n.to_string()).unwrap_or_default(),
            match e.waited_seconds {
                Some(w) => format!("{} (waited {w:.1} s for AWS)", e.detail),
                None => e.detail.clone(),
            }
        );
        if let Some(c) = &e.change {
            println!("{:>24}   before: {}", "", c.before);
            println!("{:>24}   after:  {}", "", c.after);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn report_cmd(
    g: &Global,
    run_id: &str,
    format: ReportFormat,
    out: Option<std::path::PathBuf>,
) -> anyhow::Result<ExitCode> {
    let run_id: RunId = run_id.parse()?;
    let aws = connect(g).await?;
    let audit = assure_core::audit::load(&aws, run_id.as_str()).await?;
    let text = match format {
        ReportFormat::Html => assure_core::audit::report::html(&audit),
        ReportFormat::Md => assure_core::audit::report::markdown(&audit),
        ReportFormat::Json => serde_json::to_string_pretty(&audit)? + "\n",
    };
    match out {
        Some(path) => {
            // Written beside the target, then renamed: a failure never leaves half a report.
            let tmp = path.with_extension("partial");
            std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            let (proofs, controls): (Vec<_>, Vec<_>) =
                audit.controls.iter().partition(|c| c.control.starts_with("deliveries."));
            let passed = controls.iter().filter(|c| c.passed).count();
            let proven = proofs.iter().filter(|c| c.passed).count();
            eprintln!(
                "wrote {} ({} bytes): run {} {}, {passed}/{} controls, {proven}/{} deliveries proven, {} changes",
                path.display(),
                text.len(),
                audit.run.run_id,
                audit.status,
                controls.len(),
                proofs.len(),
                audit.changes().count()
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Seconds between two RFC 3339 times, as text ("-" while running).
fn duration(start: &str, end: Option<&str>) -> String {
    use time::format_description::well_known::Rfc3339;
    let parse = |s: &str| time::OffsetDateTime::parse(s, &Rfc3339).ok();
    match (parse(start), end.and_then(parse)) {
        (Some(a), Some(b)) => format!("{:.1}", (b - a).as_seconds_f64()),
        _ => "-".to_owned(),
    }
}

async fn rollback_cmd(g: &Global, run_id: &str) -> anyhow::Result<ExitCode> {
    let run_id: RunId = run_id.parse()?;
    let aws = connect(g).await?;
    let run = assure_core::pipeline::runs::input_of(&aws, run_id.as_str()).await?;
    let report = roll_back(&aws.with_role(&run.role_name), &run).await?;
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, &run_id);
    }
    if report.failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "rollback of {run_id}: {} compensation(s) failed, the others finished; `assure runs rollback {run_id}` again runs only the failed ones (see {})",
        report.failed.len(),
        report.failed[0].error.name.doc_path()
    );
    Ok(ExitCode::FAILURE)
}

/// Rolls `run` back under the account's run lock: refused while an onboarding or another rollback
/// of the account is active; the lock is released when done, and lapses if this process dies.
pub(crate) async fn roll_back(aws: &Aws, run: &RunInput) -> anyhow::Result<assure_core::controls::Report> {
    let holder =
        lock::Holder::Process { what: "rollback".to_owned(), worker: assure_core::pipeline::checkpoint::worker_id() };
    lock::acquire(aws, &lock::Lock::new(&run.account, run.run_id.as_str(), holder.clone())).await?;
    let report = assure_core::pipeline::rollback::run(aws, run).await;
    lock::release(aws, &run.account, &holder).await?;
    Ok(report?)
}

/// A rollback's report, one line per compensation.
pub(crate) fn print_report(report: &assure_core::controls::Report, run_id: &RunId) {
    for r in &report.restored {
        println!("restored        {r}");
    }
    for r in &report.not_restorable {
        println!("not restorable  {r}");
    }
    for r in &report.already_done {
        println!("already done    {r} (by an earlier rollback of {run_id})");
    }
    for f in &report.failed {
        println!("failed          {}: {}", f.item, f.error);
    }
}

async fn retry_cmd(g: &Global, run_id: &str, timeout: u64) -> anyhow::Result<ExitCode> {
    let run_id: RunId = run_id.parse()?;
    let aws = connect(g).await?;
    let arn = runs::retry(&aws, run_id.as_str()).await?;
    let input = aws
        .pipeline()
        .sfn()
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .map_err(|e| assure_core::aws::classify(&e, "states:DescribeExecution"))?;
    let doc: serde_json::Value = serde_json::from_str(input.input().unwrap_or("{}"))?;
    let run: RunInput = serde_json::from_value(doc["run"].clone())?;
    eprintln!("run {} resumed: {}", run.run_id, arn.rsplit(':').next().unwrap_or(""));
    follow(g, &aws, &run, &arn, timeout).await
}

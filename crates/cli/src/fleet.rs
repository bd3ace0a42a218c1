//! `assure fleet` (status, check, upgrade) and `assure offboard`: every onboarded account at once.

use std::process::ExitCode;
use std::time::Duration;

use assure_contract::{AccountId, RunId, RunInput, StepError};
use assure_core::aws::Aws;
use assure_core::pipeline::checkpoint::Store;
use assure_core::pipeline::fleet::{self, Member};
use assure_core::pipeline::{deploy, runs};
use clap::{Args, Subcommand};

use crate::global::{config_of, connect, Global, Output};
use crate::onboard::{Choices, Policy};

#[derive(Subcommand)]
pub(crate) enum FleetCommand {
    /// Every onboarded account: the baseline version its last run applied and whether that is the
    /// current one, when it was last checked and whether every control held, its last run.
    ///
    /// An account is behind when its last run applied another baseline version (an older release
    /// of assure, other SCPs or alarms) or other settings (notifications, role, root access) than
    /// the deployment and the configuration file ask for now; `assure fleet upgrade` onboards it
    /// again. Exit status: 0, whatever the accounts' state (see the JSON for scripts).
    ///
    /// Example: assure fleet status --output json | jq '.accounts[] | select(.holds == false)'
    Status,
    /// Verify every onboarded account now, as the schedule does: start the watch state machine
    /// and follow it. Each account's check is recorded, every control that stopped holding is sent
    /// as an event (source assure, detail-type "Assure Control Drift") and, with the configuration
    /// file's fleet.on_drift = "repair", repaired by an onboarding run of the account.
    ///
    /// Exit status: 0 when every account holds, 1 otherwise.
    ///
    /// Example: assure fleet check
    Check(CheckArgs),
    /// Onboard again, in one bulk run, every account whose last run applied an older baseline or
    /// other settings (see `fleet status`). Nothing to do when every account is current.
    ///
    /// Example: assure fleet upgrade --concurrency 8
    Upgrade(UpgradeArgs),
    /// The fleet report: every account against every control as they stand (holds, fails, not
    /// checked), worst first, what fails with its CIS id, the drift and repairs of the period, and
    /// each account's history of checks.
    ///
    /// HTML is one self-contained page (no scripts, nothing fetched), coloured by state.
    ///
    /// Example: assure fleet report --since 30d --format html --out fleet.html
    Report(ReportArgs),
}

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// The report's format.
    #[arg(long, value_enum, default_value_t = crate::runs::ReportFormat::Html)]
    format: crate::runs::ReportFormat,
    /// Write the report to this file instead of standard output.
    #[arg(long, short)]
    out: Option<std::path::PathBuf>,
    /// The period's start: a duration back from now (30m, 24h, 7d) or a date (2026-11-29).
    #[arg(long, default_value = "30d")]
    since: String,
}

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// Give up following the watch after this many seconds (it goes on).
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(10..=86400))]
    timeout: u64,
}

#[derive(Args)]
pub(crate) struct UpgradeArgs {
    /// Accounts onboarded at once, 1 to 40 (default: the config file's options.concurrency, else 4).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=40))]
    concurrency: Option<u32>,
    /// Give up following the bulk run after this many seconds (the run itself goes on).
    #[arg(long, value_parser = clap::value_parser!(u64).range(10..=86400))]
    timeout: Option<u64>,
}

#[derive(Args)]
pub(crate) struct OffboardArgs {
    /// The 12-digit id of the account to take out of the fleet.
    account: String,
}

pub(crate) async fn run(g: &Global, cmd: FleetCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FleetCommand::Status => status(g).await,
        FleetCommand::Check(args) => check(g, args).await,
        FleetCommand::Upgrade(args) => upgrade(g, args).await,
        FleetCommand::Report(args) => report(g, args).await,
    }
}

/// One account as `fleet status` shows it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Standing {
    account: AccountId,
    /// The baseline version its last run applied (`RELEASE+DIGEST`), if recorded.
    baseline: Option<String>,
    /// Its last run applied the current baseline with the current settings.
    current: bool,
    regions: Vec<String>,
    last_run: String,
    onboarded_at: String,
    last_checked: Option<String>,
    /// Every control held at its last check (or at the end of its last run, if never checked).
    holds: bool,
    failing: Vec<fleet::Failing>,
    /// The repair run its last check started, if any.
    repair: Option<String>,
}

/// The fleet as it stands: the connection (with the role), the current baseline's template run,
/// each account and its standing.
async fn standings(g: &Global) -> anyhow::Result<(Aws, RunInput, Vec<(Member, Standing)>)> {
    let aws = connect(g).await?;
    let settings = deploy::load_settings(&aws).await?;
    let aws = aws.with_role(&settings.role_name);
    let choices = Choices::of(g, None, None, None)?;
    let template = crate::onboard::template(&aws, &settings, settings.org.security.clone(), choices);
    let store = Store::new(&aws);
    let mut out = Vec::new();
    for m in fleet::members(&store).await? {
        let latest = fleet::latest(&store, &m.account).await?.filter(|c| fleet::later(&c.at, &m.note.at));
        let desired = fleet::desired(&template, &m);
        let s = Standing {
            account: m.account.clone(),
            baseline: m.note.baseline.as_ref().map(|b| b.to_string()),
            current: !fleet::behind(&m, &desired),
            regions: desired.regions.iter().map(|r| r.to_string()).collect(),
            last_run: m.note.run_id.clone(),
            onboarded_at: m.note.at.clone(),
            last_checked: latest.as_ref().map(|c| c.at.clone()),
            holds: latest.as_ref().is_none_or(|c| c.holds),
            failing: latest.as_ref().map(|c| c.failing.clone()).unwrap_or_default(),
            repair: latest.and_then(|c| c.repair),
        };
        out.push((m, s));
    }
    Ok((aws, template, out))
}

async fn status(g: &Global) -> anyhow::Result<ExitCode> {
    let (_aws, template, fleet) = standings(g).await?;
    let version = assure_core::controls::baseline::version(&template);
    let accounts: Vec<&Standing> = fleet.iter().map(|(_, s)| s).collect();
    if g.output == Output::Json {
        let doc = serde_json::json!({"baseline": version.to_string(), "accounts": accounts});
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("current baseline {version}");
    if accounts.is_empty() {
        println!("no account is onboarded yet (`assure onboard ACCOUNT`)");
        return Ok(ExitCode::SUCCESS);
    }
    println!();
    println!(
        "{:<14} {:<22} {:<8} {:<21} {:<21} {:<6} RUN",
        "ACCOUNT", "BASELINE", "VERSION", "ONBOARDED", "CHECKED", "HOLDS"
    );
    // To the second: enough to tell checks apart in a table; the JSON keeps the whole time.
    let second = |t: &str| t.get(..19).map(|s| format!("{s}Z")).unwrap_or_else(|| t.to_owned());
    for s in &accounts {
        println!(
            "{:<14} {:<22} {:<8} {:<21} {:<21} {:<6} {}",
            s.account.as_str(),
            s.baseline.as_deref().unwrap_or("-"),
            if s.current { "current" } else { "behind" },
            second(&s.onboarded_at),
            s.last_checked.as_deref().map(second).unwrap_or_else(|| "never".to_owned()),
            if s.holds { "yes" } else { "no" },
            s.last_run
        );
        for f in &s.failing {
            println!("  ✗ {} in {} ({}): {}", f.control, f.region, f.resource, f.saw);
        }
        if let Some(r) = &s.repair {
            println!("  ↻ repair run {r}");
        }
    }
    let behind = accounts.iter().filter(|s| !s.current).count();
    let failing = accounts.iter().filter(|s| !s.holds).count();
    println!();
    println!("{} account(s): {behind} behind, {failing} not holding at their last check", accounts.len());
    if behind > 0 {
        println!("`assure fleet upgrade` onboards the {behind} behind again");
    }
    Ok(ExitCode::SUCCESS)
}

async fn check(g: &Global, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let aws = connect(g).await?;
    let settings = deploy::load_settings(&aws).await?;
    let aws = aws.with_role(&settings.role_name);
    let choices = Choices::of(g, Some(Policy::Hold), None, None)?;
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let template = RunInput {
        run_id: format!("watch-cli-{secs}").parse::<RunId>()?,
        ..crate::onboard::template(&aws, &settings, aws.pipeline().account.clone(), choices)
    };
    let arn = fleet::start(&aws, &template).await?;
    eprintln!("watch {} started: every onboarded account, read-only", template.run_id);
    let finished =
        runs::watch(&aws, &arn, Duration::from_millis(500), Duration::from_secs(args.timeout), |_| {}).await?;
    let store = Store::new(&aws);
    let mut checks = Vec::new();
    for m in fleet::members(&store).await? {
        if let Some(c) = fleet::latest(&store, &m.account).await?.filter(|c| c.by == template.run_id.as_str()) {
            checks.push(c);
        }
    }
    let holding = checks.iter().all(|c| c.holds);
    if g.output == Output::Json {
        let doc = serde_json::json!({"watch": template.run_id, "status": finished.status,
                                     "error": finished.error, "cause": finished.cause, "checks": checks});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for c in &checks {
            let mark = if c.holds { "✓" } else { "✗" };
            println!(
                "{mark} {}  {} check(s), {} failing, {} drifted",
                c.account,
                c.checked,
                c.failing.len(),
                c.drifted.len()
            );
            for f in &c.failing {
                println!("    {} in {} ({}): {}", f.control, f.region, f.resource, f.saw);
            }
            if let Some(e) = &c.error {
                println!("    not checked: {e}");
            }
            if let Some(r) = &c.repair {
                println!("    ↻ repair run {r} started");
            }
            if let Some(why) = &c.not_repaired {
                println!("    not repaired: {why}");
            }
        }
        println!();
        println!(
            "watch {}: {}; {} of {} account(s) hold",
            template.run_id,
            finished.status,
            checks.iter().filter(|c| c.holds).count(),
            checks.len()
        );
        if let (Some(e), c) = (&finished.error, &finished.cause) {
            println!("error {e}: {}", c.as_deref().unwrap_or(""));
        }
    }
    Ok(if finished.status == "SUCCEEDED" && holding { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn report(g: &Global, args: ReportArgs) -> anyhow::Result<ExitCode> {
    use crate::runs::ReportFormat;

    let since = crate::runs::parse_since(&args.since, time::OffsetDateTime::now_utc())?;
    let (aws, template, _) = standings(g).await?;
    let report = assure_core::audit::fleet::build(&Store::new(&aws), &template, since).await?;
    let text = match args.format {
        ReportFormat::Html => assure_core::audit::fleet::html(&report),
        ReportFormat::Md => assure_core::audit::fleet::markdown(&report),
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
    match args.out {
        Some(path) => {
            std::fs::write(&path, text)
                .map_err(|e| StepError::invalid_input(format!("--out {}: {e}", path.display())))?;
            eprintln!("wrote {} ({} account(s))", path.display(), report.accounts.len());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn upgrade(g: &Global, args: UpgradeArgs) -> anyhow::Result<ExitCode> {
    let options = config_of(g)?.map(|c| c.options).unwrap_or_default();
    let (aws, template, fleet) = standings(g).await?;
    let version = assure_core::controls::baseline::version(&template);
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let behind: Vec<RunInput> = fleet
        .iter()
        .filter(|(_, s)| !s.current)
        .map(|(m, _)| RunInput { run_id: RunId::for_onboarding(&m.account, secs), ..fleet::desired(&template, m) })
        .collect();
    if behind.is_empty() {
        if g.output == Output::Json {
            println!(
                "{}",
                serde_json::json!({"baseline": version.to_string(), "upgraded": [], "accounts": fleet.len()})
            );
        } else {
            println!("every account ({}) is on baseline {version}: nothing to upgrade", fleet.len());
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("upgrading {} of {} account(s) to baseline {version}", behind.len(), fleet.len());
    let concurrency = args.concurrency.unwrap_or(options.concurrency);
    // One bulk run per set of regions: a bulk run's organization step covers its first run's
    // regions for all of its accounts.
    let mut by_regions: std::collections::BTreeMap<Vec<String>, Vec<RunInput>> = Default::default();
    for run in behind {
        by_regions.entry(run.regions.iter().map(|r| r.to_string()).collect()).or_default().push(run);
    }
    let mut code = ExitCode::SUCCESS;
    for runs in by_regions.values() {
        let done =
            crate::onboard::bulk(g, &aws, runs, concurrency, args.timeout.unwrap_or(options.timeout_seconds)).await?;
        if done != ExitCode::SUCCESS {
            code = done;
        }
    }
    Ok(code)
}

/// `assure offboard ACCOUNT`: the account's runs rolled back, newest first, so its configuration is
/// the one it had before it was first onboarded (but for what each report calls not restorable);
/// then it leaves the fleet (its note is deleted: no schedule checks it any longer), with a record.
pub(crate) async fn offboard(g: &Global, args: OffboardArgs) -> anyhow::Result<ExitCode> {
    use assure_core::pipeline::offboard::{offboard, Outcome};

    let account: AccountId = args.account.parse()?;
    let aws = connect(g).await?;
    let settings = deploy::load_settings(&aws).await?;
    let aws = aws.with_role(&settings.role_name);
    let outcome = offboard(&aws, &account, |run, report| {
        eprintln!("rolled back {}", run.run_id);
        if g.output != Output::Json {
            crate::runs::print_report(report, &run.run_id);
        }
    })
    .await?;
    match outcome {
        Outcome::AlreadyOffboarded { at } => {
            if g.output == Output::Json {
                println!("{}", serde_json::json!({"account": account, "offboardedAt": at, "changes": []}));
            } else {
                println!("account {account} was offboarded at {at} and not onboarded since: nothing to do");
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::CompensationsFailed { failed, .. } => {
            eprintln!(
                "offboarding {account}: {failed} compensation(s) failed; the account stays in the fleet. `assure offboard {account}` again runs only what failed"
            );
            Ok(ExitCode::FAILURE)
        }
        Outcome::Done { record, key } => {
            if g.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                println!();
                println!(
                    "account {account} offboarded: {} run(s) rolled back; out of the fleet (record {key})",
                    record.runs.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

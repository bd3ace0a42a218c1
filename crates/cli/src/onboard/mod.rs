//! `assure onboard`, `plan` and `verify`: one account (or many, in a bulk run) from the
//! deployment's settings and the flags, validated read-only before anything starts.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use assure_contract::{AccountId, ExistingTrails, FailurePolicy, RootAccess, RunId, RunInput, StepError};
use assure_core::aws::Aws;
use assure_core::pipeline::deploy;
use assure_core::pipeline::runs::{self, Progress};
use clap::{Args, ValueEnum};

use crate::global::{config_of, connect, parse_regions, Global, Output};

mod verify;
pub(crate) use verify::*;

#[derive(Args)]
#[command(group(clap::ArgGroup::new("targets").required(true).args(["account", "accounts_file", "ou"])))]
pub(crate) struct OnboardArgs {
    /// The 12-digit id of the account to onboard.
    account: Option<String>,
    /// A file of account ids, one per line (# starts a comment): onboard them all.
    #[arg(long)]
    accounts_file: Option<std::path::PathBuf>,
    /// Onboard every account under this OU (ou-…) or root (r-…), child OUs included; the
    /// organization's management, logging and security accounts are skipped.
    #[arg(long)]
    ou: Option<String>,
    /// Accounts onboarded at once in a bulk run, 1 to 40 (default: the config file's
    /// options.concurrency, else 4).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=40))]
    concurrency: Option<u32>,
    /// Regions to cover, comma-separated (default: the deployment's).
    #[arg(long, value_delimiter = ',')]
    regions: Option<Vec<String>>,
    /// What to do when a step fails for good (default: the config file's options.on_failure, else hold).
    #[arg(long, value_enum)]
    on_failure: Option<Policy>,
    /// What to do with the account's own trails once the assure trail logs: `retire` records each
    /// whole in the run's snapshot and deletes its configuration (its logs stay; rollback recreates
    /// it), `stop` only stops it (CIS scanners still list it). Default: the config file's
    /// options.existing_trails, else retire.
    #[arg(long, value_enum)]
    existing_trails: Option<Trails>,
    /// What to do with the account's root user: `keep` its credentials (the restrict-root SCP
    /// still denies their use), or `centralized`: enable centralized root access for the
    /// organization (once) and delete the account's root password, access keys and signing
    /// certificates and deactivate its MFA devices, through a root session scoped to AWS's
    /// IAMDeleteRootUserCredentials task (CIS v7.0.0 2.1.1). Default: the config file's
    /// options.root_access, else keep.
    #[arg(long, value_enum)]
    root_access: Option<Root>,
    /// Run id (default: onboard-ACCOUNT-UNIXTIME). Starting an existing run id follows that run.
    #[arg(long)]
    run_id: Option<String>,
    /// Run every step. By default, an account whose baseline held at the end of its last run with
    /// the same settings is verified first, and the run stops there when every control still holds;
    /// `--full` has every step read and repair its part all the same.
    #[arg(long)]
    full: bool,
    /// Whether the run's Verify state also proves delivery: a canary down every path, found at its
    /// destination (see `verify --deliveries`). Default: the config file's
    /// options.prove_deliveries, else true with the local cloud and false on AWS.
    #[arg(long)]
    prove_deliveries: Option<bool>,
    /// Give up following the run after this many seconds (the run itself goes on). Default: the
    /// config file's options.timeout_seconds, else 1800; 10 to 86400.
    #[arg(long, value_parser = clap::value_parser!(u64).range(10..=86400))]
    timeout: Option<u64>,
}

#[derive(Args)]
pub(crate) struct TargetArgs {
    /// The 12-digit id of the account to check.
    account: String,
    /// Regions to check, comma-separated (default: the deployment's).
    #[arg(long, value_delimiter = ',')]
    regions: Option<Vec<String>>,
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Also prove that the controls work: send a canary down every delivery path (a management
    /// event, a configuration snapshot, a GuardDuty sample finding, an IAM Access Analyzer finding,
    /// an alarm notification) in every region, and find each at its destination. Prints the object
    /// or record that proves it and how long it took. The alarm's subscribers get a test
    /// notification, and a role trusting an outside account exists (with no permissions) until its
    /// finding arrives.
    #[arg(long)]
    deliveries: bool,
    /// With --deliveries: how long to wait for the canaries, in seconds. AWS delivers within
    /// minutes (CloudTrail about 5, GuardDuty's export up to 5); the local cloud within seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=3600), requires = "deliveries")]
    wait: u64,
}

#[derive(Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// What the run would do with the account's own trails (see `onboard --existing-trails`).
    /// Default: the config file's options.existing_trails, else retire.
    #[arg(long, value_enum)]
    existing_trails: Option<Trails>,
    /// What the run would do with the account's root user (see `onboard --root-access`).
    /// Default: the config file's options.root_access, else keep.
    #[arg(long, value_enum)]
    root_access: Option<Root>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Root {
    /// Leave the root user's credentials as they are.
    Keep,
    /// Centralized root access: the account keeps no root credentials.
    Centralized,
}

/// The run's choices the flags and the config file make.
#[derive(Clone, Copy)]
pub(crate) struct Choices {
    policy: FailurePolicy,
    existing_trails: ExistingTrails,
    root_access: RootAccess,
    /// `options.prove_deliveries`; None: on with the local cloud only.
    deliveries: Option<bool>,
}

impl Choices {
    /// The flags' choices, else the config file's, else the defaults.
    pub(crate) fn of(
        g: &Global,
        policy: Option<Policy>,
        trails: Option<Trails>,
        root: Option<Root>,
    ) -> anyhow::Result<Choices> {
        let options = config_of(g)?.map(|c| c.options).unwrap_or_default();
        Ok(Choices {
            policy: match policy {
                Some(Policy::Hold) => FailurePolicy::Hold,
                Some(Policy::Rollback) => FailurePolicy::Rollback,
                None => options.on_failure,
            },
            existing_trails: match trails {
                Some(Trails::Retire) => ExistingTrails::Retire,
                Some(Trails::Stop) => ExistingTrails::Stop,
                None => options.existing_trails,
            },
            root_access: match root {
                Some(Root::Keep) => RootAccess::Keep,
                Some(Root::Centralized) => RootAccess::Centralized,
                None => options.root_access,
            },
            deliveries: options.prove_deliveries,
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Trails {
    /// Record each trail whole, then delete its configuration (never its logs).
    Retire,
    /// Stop each trail's logging; keep its configuration.
    Stop,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Policy {
    /// Stop and keep what was done, ready for `assure runs retry`.
    Hold,
    /// Undo the completed steps, then fail.
    Rollback,
}

/// The run input for `account` from the deployment's settings and the flags (checked against the
/// organization by the caller, read-only, so bad input changes nothing). Returns the connection
/// with the role set.
async fn run_input(
    g: &Global,
    account: &str,
    regions: Option<&[String]>,
    run_id: Option<&str>,
    choices: Choices,
) -> anyhow::Result<(Aws, RunInput)> {
    let account: AccountId = account.parse()?;
    let aws = connect(g).await?;
    let settings = deploy::load_settings(&aws).await?;
    let regions = match regions {
        Some(r) => parse_regions(r)?,
        None => settings.regions.clone(),
    };
    if !regions.contains(&settings.home_region) {
        return Err(StepError::invalid_input(format!(
            "--regions: the deployment's home region {} must be one of the run's regions",
            settings.home_region
        ))
        .into());
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let run_id = match run_id {
        Some(id) => id.parse::<RunId>()?,
        None => RunId::for_onboarding(&account, now),
    };
    let run = RunInput { run_id, regions, ..template(&aws, &settings, account, choices) };
    Ok((aws.with_role(&run.role_name), run))
}

/// A new onboarding run of `account` under the deployment's `settings` and the operator's
/// `choices`, in the deployment's regions.
pub(crate) fn template(aws: &Aws, settings: &deploy::Settings, account: AccountId, choices: Choices) -> RunInput {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    RunInput {
        run_id: RunId::for_onboarding(&account, now),
        account,
        regions: settings.regions.clone(),
        home_region: settings.home_region.clone(),
        org: settings.org.clone(),
        role_name: settings.role_name.clone(),
        policy: choices.policy,
        notify: settings.notify.as_ref().map(assure_contract::Notify::for_runs),
        existing_trails: choices.existing_trails,
        root_access: choices.root_access,
        organization: None,
        full: false,
        deliveries: choices.deliveries.unwrap_or(aws.endpoint_url().is_some()),
    }
}

pub(crate) async fn plan(g: &Global, args: PlanArgs) -> anyhow::Result<ExitCode> {
    let choices = Choices::of(g, Some(Policy::Hold), args.existing_trails, args.root_access)?;
    let args = args.target;
    let (aws, run) = run_input(g, &args.account, args.regions.as_deref(), None, choices).await?;
    assure_core::pipeline::preflight::validate(&aws, &run).await?;
    let planned = assure_core::pipeline::plan::run(&aws.planning(), &run).await?;
    let changes: Vec<_> = planned.iter().flat_map(|p| p.changes.iter().map(move |c| (p.step, c))).collect();
    if g.output == Output::Json {
        let doc = serde_json::json!({
            "account": run.account, "regions": run.regions,
            "changes": changes.iter().map(|(step, c)| serde_json::json!({"step": step, "change": c})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for (step, c) in &changes {
            println!("{:<16} {:<14} {:<15} {:<8} {}", step.as_str(), c.account, c.region, c.action, c.resource);
        }
        println!();
        println!("{} change(s) would be made to onboard account {}", changes.len(), run.account);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn onboard(g: &Global, args: OnboardArgs) -> anyhow::Result<ExitCode> {
    let options = config_of(g)?.map(|c| c.options).unwrap_or_default();
    let mut choices = Choices::of(g, args.on_failure, args.existing_trails, args.root_access)?;
    choices.deliveries = args.prove_deliveries.or(choices.deliveries);
    let timeout = args.timeout.unwrap_or(options.timeout_seconds);
    if args.account.is_none() {
        let concurrency = args.concurrency.unwrap_or(options.concurrency);
        return bulk_cmd(g, &args, choices, concurrency, timeout).await;
    }
    let account = args.account.as_deref().unwrap_or_default();
    let (aws, mut run) = run_input(g, account, args.regions.as_deref(), args.run_id.as_deref(), choices).await?;
    run.full = args.full;
    // Bad input and what a control would refuse fail here, before the run starts and before any
    // change: the run's preflight step, which the execution then finds done.
    let preflight = assure_core::pipeline::preflight::run(&aws, &run).await?;
    let arn = runs::start(&aws, &run, Some(preflight)).await?;
    eprintln!("run {} started: {} in {} region(s)", run.run_id, run.account, run.regions.len());
    follow(g, &aws, &run, &arn, timeout).await
}

/// Many accounts in one bulk execution.
async fn bulk_cmd(
    g: &Global,
    args: &OnboardArgs,
    choices: Choices,
    concurrency: u32,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    if !(1..=40).contains(&concurrency) {
        return Err(StepError::invalid_input(format!("--concurrency: {concurrency} is out of range (1 to 40)")).into());
    }
    if args.run_id.is_some() {
        return Err(
            StepError::invalid_input("--run-id: names one run; bulk runs name theirs onboard-ACCOUNT-TIME").into()
        );
    }
    let aws = connect(g).await?;
    let settings = deploy::load_settings(&aws).await?;
    let regions = match &args.regions {
        Some(r) => parse_regions(r)?,
        None => settings.regions.clone(),
    };
    let aws = aws.with_role(&settings.role_name);
    let accounts = match (&args.accounts_file, &args.ou) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| StepError::invalid_input(format!("--accounts-file {}: {e}", path.display())))?;
            assure_core::pipeline::bulk::accounts_from_file(&text, &path.display().to_string())?
        }
        (None, Some(ou)) => {
            let all =
                assure_core::pipeline::bulk::accounts_in_ou(&aws, &settings.org, &settings.home_region, ou).await?;
            let (special, targets): (Vec<_>, Vec<_>) = all.into_iter().partition(|a| settings.org.role_of(a).is_some());
            for a in &special {
                eprintln!("skipping {a}: the organization's {} account", settings.org.role_of(a).unwrap_or(""));
            }
            if targets.is_empty() {
                return Err(StepError::invalid_input(format!("--ou {ou}: no accounts to onboard under it")).into());
            }
            targets
        }
        (None, None) => unreachable!("clap requires a target"),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let runs: Vec<RunInput> = accounts
        .iter()
        .map(|a| RunInput {
            run_id: RunId::for_onboarding(a, now),
            regions: regions.clone(),
            full: args.full,
            ..template(&aws, &settings, a.clone(), choices)
        })
        .collect();
    bulk(g, &aws, &runs, concurrency, timeout).await
}

/// Starts the bulk run of `runs` (validated first, read-only), follows it, prints each account's
/// result.
pub(crate) async fn bulk(
    g: &Global,
    aws: &Aws,
    runs: &[RunInput],
    concurrency: u32,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let regions = runs.first().map(|r| r.regions.len()).unwrap_or_default();
    assure_core::pipeline::bulk::validate(aws, runs).await?;
    let bulk_id = format!("bulk-{now}");
    let arn = assure_core::pipeline::bulk::start(aws, &bulk_id, runs, concurrency).await?;
    eprintln!("bulk run {bulk_id} started: {} account(s), {concurrency} at once, {regions} region(s) each", runs.len());
    let json = g.output == Output::Json;
    let tty = std::io::stderr().is_terminal();
    let bar = progress_bar(tty, runs.len(), "{pos}/{len} accounts  {elapsed}");
    let started = std::time::Instant::now();
    let followed = assure_core::pipeline::bulk::follow(
        aws,
        &arn,
        runs,
        Duration::from_secs(1),
        Duration::from_secs(timeout),
        |account, run, status| {
            let mark = if status == "SUCCEEDED" { "✓" } else { "✗" };
            let line = format!("  {mark} {account}  {run}  {status}");
            bar.inc(1);
            if tty {
                bar.println(line);
            } else {
                eprintln!("{line}");
            }
        },
    )
    .await;
    bar.finish_and_clear();
    let (status, results) = followed?;
    let seconds = started.elapsed().as_secs_f64();
    let succeeded = results.iter().filter(|r| r.status == "SUCCEEDED").count();
    if json {
        let doc = serde_json::json!({
            "bulkId": bulk_id, "executionArn": arn, "status": status, "seconds": seconds,
            "succeeded": succeeded, "failed": results.len() - succeeded, "accounts": results,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!();
        println!(
            "{:<14} {:<34} {:<10} {:>8} {:>8} {:>9} {:>10}  ERROR",
            "ACCOUNT", "RUN", "STATUS", "SECONDS", "CHANGES", "CONTROLS", "DELIVERIES"
        );
        for r in &results {
            println!(
                "{:<14} {:<34} {:<10} {:>8} {:>8} {:>9} {:>10}  {}",
                r.account,
                r.run_id,
                r.status,
                r.seconds.map(|s| format!("{s:.1}")).unwrap_or_else(|| "-".into()),
                r.changes,
                format!("{}/{}", r.controls_passed, r.controls),
                format!("{}/{}", r.deliveries_proven, r.deliveries),
                r.error.as_deref().unwrap_or("")
            );
        }
        println!();
        println!(
            "{} account(s): {succeeded} succeeded, {} failed, in {seconds:.1}s (bulk execution {bulk_id})",
            results.len(),
            results.len() - succeeded
        );
    }
    Ok(if succeeded == results.len() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A progress bar over `len` items on a terminal (`tail` follows the bar in its template); hidden
/// elsewhere, where callers print plain lines.
fn progress_bar(tty: bool, len: usize, tail: &str) -> indicatif::ProgressBar {
    if !tty {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(len as u64);
    b.set_style(
        indicatif::ProgressStyle::with_template(&format!("  {{bar:30.green/white}} {tail}"))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b.enable_steady_tick(Duration::from_millis(200));
    b
}

/// Follows an execution to its end with live progress, then prints the summary.
pub(crate) async fn follow(g: &Global, aws: &Aws, run: &RunInput, arn: &str, timeout: u64) -> anyhow::Result<ExitCode> {
    eprintln!("  execution {arn}");
    let json = g.output == Output::Json;
    let tty = std::io::stderr().is_terminal();
    // On a terminal, a bar over the run's tasks (each step once, regional steps once per region);
    // elsewhere (CI logs, pipes) plain lines only.
    let tasks = assure_contract::StepName::ALL
        .iter()
        .filter(|s| **s != assure_contract::StepName::Rollback && s.account_run())
        .map(|s| if s.regional() { run.regions.len() } else { 1 })
        .sum::<usize>();
    let bar = progress_bar(tty, tasks, "{pos}/{len} tasks  {elapsed}  {msg}");
    let finished = runs::watch(aws, arn, Duration::from_millis(500), Duration::from_secs(timeout), |p| {
        if json {
            println!("{}", serde_json::to_string(p).unwrap_or_default());
        }
        match p {
            Progress::StepStarted { step, region } => bar.set_message(format!("{step} {region}")),
            Progress::StepSucceeded { .. } => bar.inc(1),
            _ => {}
        }
        let line = match p {
            Progress::StepStarted { step, region } => {
                format!("  … {step:<15} {region:<15} started")
            }
            Progress::StepSucceeded { step, region, summary, changes } => {
                format!("  ✓ {step:<15} {region:<15} {summary} [{changes} change(s)]")
            }
            // A retryable failure is retried by the state machine, bounded: shown as a wait, the
            // cause's first clause only (the evidence names every control it waits for).
            Progress::StepFailed { step, region, error, cause } if error == "Assure.Retryable" => {
                let short = cause.split(": ").next().unwrap_or(cause);
                format!("  ↻ {step:<15} {region:<15} {error}, retried: {short}")
            }
            Progress::StepFailed { step, region, error, cause } => {
                format!("  ✗ {step:<15} {region:<15} {error}: {cause}")
            }
            Progress::StepTimedOut { step, region } => {
                format!("  ⏱ {step:<15} {region:<15} timed out (retrying)")
            }
        };
        if tty {
            bar.println(line);
        } else if !json {
            eprintln!("{line}");
        }
    })
    .await;
    bar.finish_and_clear();
    let finished = finished?;
    let succeeded = finished.status == "SUCCEEDED";
    if json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({"event": "finished", "run": run.run_id, "result": finished}))?
        );
    } else {
        let changes: usize = finished.outputs.iter().map(|o| o.changes.len()).sum();
        let (proofs, evidence): (Vec<_>, Vec<_>) =
            finished.outputs.iter().flat_map(|o| o.evidence.iter()).partition(|e| e.control.starts_with("deliveries."));
        let passed = evidence.iter().filter(|e| e.passed).count();
        println!();
        println!("run        {}", run.run_id);
        println!("account    {}", run.account);
        println!("regions    {}", run.regions.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "));
        println!("status     {}  ({:.1}s)", finished.status, finished.seconds);
        println!("changes    {changes}");
        println!("controls   {passed}/{} verified", evidence.len());
        if !proofs.is_empty() {
            // Each path's time: from the canary to its arrival, as the evidence says.
            let proven = proofs.iter().filter(|e| e.passed).count();
            println!("deliveries {proven}/{} proven", proofs.len());
            for e in &proofs {
                let mark = if e.passed { "✓" } else { "✗" };
                println!("  {mark} {:<28} {:<15} {}", e.control, e.region, e.detail);
            }
        }
        if let (Some(e), c) = (&finished.error, &finished.cause) {
            println!("error      {e}: {}", c.as_deref().unwrap_or(""));
        }
        let mut states: Vec<&str> = Vec::new();
        for s in &finished.task_states {
            if !states.contains(&s.as_str()) {
                states.push(s);
            }
        }
        println!("history    {} task states entered: {}", finished.task_states.len(), states.join(" → "));
        println!("execution  {}", finished.execution_arn);
    }
    Ok(if succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

//! `assure`: glue between the command line and `assure_core`. Parses flags, validates them into
//! typed values once, calls the core, prints data on stdout and everything else on stderr.

mod config;
mod local;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use assure_contract::{AccountId, FailurePolicy, OrgLayout, Region, RunId, RunInput, StepError};
use assure_core::aws::Aws;
use assure_core::deploy::{self, Settings};
use assure_core::runs::{self, Progress};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Bring AWS accounts into your organization's security baseline, taking over what they already had.
///
/// Quick start (no AWS account needed):
///   eval "$(assure local up)"      # the local cloud, in the background
///   assure local seed              # a demo organization with brownfield accounts
///   assure deploy --logging-account L --security-account S
///   assure onboard ACCOUNT_ID
///
/// Against AWS, use your usual credentials (--profile, --region or the AWS_* variables).
#[derive(Parser)]
#[command(name = "assure", version, propagate_version = true, verbatim_doc_comment)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// AWS profile to use (default: the standard credential chain).
    #[arg(long, global = true, env = "AWS_PROFILE")]
    profile: Option<String>,
    /// AWS region of the pipeline (default: from the profile or AWS_REGION).
    #[arg(long, global = true)]
    region: Option<String>,
    /// Output format of data written to stdout.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Configuration file (TOML; see `assure config schema`). Flags given on the command line win.
    #[arg(long, global = true, env = "ASSURE_CONFIG")]
    config: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// The local cloud: AWS emulated on 127.0.0.1 (moto plus assure's extension).
    #[command(subcommand)]
    Local(local::LocalCommand),
    /// Deploy (or update) the pipeline in the current account: checkpoint bucket, queues, state machine.
    ///
    /// Example: assure deploy --logging-account 111111111111 --security-account 222222222222 --regions us-east-1,eu-west-1
    Deploy(DeployArgs),
    /// Onboard one account, or many: start the run(s), show progress, end with a summary.
    ///
    /// Many accounts (--accounts-file or --ou) run in one bulk execution, each account its own
    /// child run, at most --concurrency at once; one account's failure does not stop the others.
    ///
    /// Exit status: 0 when every run succeeded, 1 when one failed, 2 when the input was rejected
    /// before anything changed.
    ///
    /// Examples:
    ///   assure onboard 123456789012 --regions us-east-1,eu-west-1
    ///   assure onboard --accounts-file imported.txt --concurrency 4
    ///   assure onboard --ou ou-ab12-cdef3456
    #[command(verbatim_doc_comment)]
    Onboard(OnboardArgs),
    /// Show what onboarding an account would change, from read-only calls only.
    ///
    /// Runs every step in plan mode, in the state machine's order; a guard in the AWS clients
    /// refuses any mutating call. Exit status: 0, or 2 when the input was rejected.
    ///
    /// Example: assure plan 123456789012 --regions us-east-1,eu-west-1 --output json
    Plan(VerifyArgs),
    /// Check every control of an account, read-only; exit 0 only when all hold.
    ///
    /// Names each control that does not hold, with its region. Exit status: 0 all controls hold,
    /// 1 some do not, 2 the input was rejected.
    ///
    /// Example: assure verify 123456789012 --output json
    Verify(VerifyArgs),
    /// Runs: resume a failed run.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// The configuration file: print its JSON Schema, or check a file against it.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script.
    ///
    /// Example: assure completions bash > ~/.local/share/bash-completion/completions/assure
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Run the step workers locally: poll every step queue and run the step binaries.
    ///
    /// `assure local up` starts one for you; run this only to watch workers in the foreground.
    Worker(WorkerArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the JSON Schema of the configuration file (for editors and CI checks).
    ///
    /// Example: assure config schema > assure.schema.json
    Schema,
    /// Check a configuration file: exit 0 and print it with its defaults filled in, or exit 2
    /// naming each bad field and why.
    ///
    /// Example: assure config check assure.toml
    Check {
        /// The file (default: --config).
        file: Option<std::path::PathBuf>,
    },
}

#[derive(Args)]
struct DeployArgs {
    /// The organization's logging account (holds the shared logging bucket). Default: the config
    /// file's organization.logging_account.
    #[arg(long)]
    logging_account: Option<String>,
    /// The organization's security account (delegated administrator for GuardDuty, Access Analyzer,
    /// Config). Default: the config file's organization.security_account.
    #[arg(long)]
    security_account: Option<String>,
    /// Regions runs cover by default, comma-separated; the first is the home region. Default: the
    /// config file's regions, else us-east-1.
    #[arg(long, value_delimiter = ',')]
    regions: Option<Vec<String>>,
    /// The role assure assumes in every account. Default: the config file's role_name, else
    /// AssureExecutionRole.
    #[arg(long)]
    role_name: Option<String>,
    /// Only record the settings, for a pipeline deployed with infra/assure.template.json.
    #[arg(long)]
    settings_only: bool,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("targets").required(true).args(["account", "accounts_file", "ou"])))]
struct OnboardArgs {
    /// The 12-digit id of the account to onboard.
    account: Option<String>,
    /// A file of account ids, one per line (# starts a comment): onboard them all.
    #[arg(long)]
    accounts_file: Option<std::path::PathBuf>,
    /// Onboard every account under this OU (ou-…) or root (r-…), child OUs included; the
    /// organization's management, logging and security accounts are skipped.
    #[arg(long)]
    ou: Option<String>,
    /// Accounts onboarded at once in a bulk run (default: the config file's options.concurrency, else 4).
    #[arg(long)]
    concurrency: Option<u32>,
    /// Regions to cover, comma-separated (default: the deployment's).
    #[arg(long, value_delimiter = ',')]
    regions: Option<Vec<String>>,
    /// What to do when a step fails for good (default: the config file's options.on_failure, else hold).
    #[arg(long, value_enum)]
    on_failure: Option<Policy>,
    /// Run id (default: onboard-ACCOUNT-UNIXTIME). Starting an existing run id follows that run.
    #[arg(long)]
    run_id: Option<String>,
    /// Give up following the run after this many seconds (the run itself goes on). Default: the
    /// config file's options.timeout_seconds, else 1800.
    #[arg(long)]
    timeout: Option<u64>,
}

#[derive(Subcommand)]
enum RunsCommand {
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
        /// Only runs whose latest execution has this status (running, succeeded, failed, …).
        #[arg(long)]
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
    /// the account. Exit status: 0 done, 1 a compensation failed, 2 no such run.
    ///
    /// Example: assure runs rollback onboard-123456789012-1700000000
    Rollback {
        /// The run id.
        run: String,
    },
}

/// The input of a run, from its first execution.
async fn run_of(aws: &Aws, run_id: &str) -> anyhow::Result<RunInput> {
    let arn = runs::execution_arn(aws, run_id);
    let d = aws.pipeline().sfn().describe_execution().execution_arn(&arn).send().await.map_err(|e| {
        match assure_core::aws::error_code(&e) {
            Some("ExecutionDoesNotExist") => StepError::invalid_input(format!("run {run_id}: no such run")),
            _ => assure_core::aws::classify(&e, "states:DescribeExecution"),
        }
    })?;
    let doc: serde_json::Value = serde_json::from_str(d.input().unwrap_or("{}"))?;
    Ok(serde_json::from_value(doc["run"].clone())?)
}

#[derive(Args)]
struct VerifyArgs {
    /// The 12-digit id of the account to check.
    account: String,
    /// Regions to check, comma-separated (default: the deployment's).
    #[arg(long, value_delimiter = ',')]
    regions: Option<Vec<String>>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    /// One self-contained page.
    Html,
    /// The audit record, for scripts.
    Json,
    /// Markdown tables, for a ticket or a pull request.
    Md,
}

#[derive(Clone, Copy, ValueEnum)]
enum Policy {
    /// Stop and keep what was done, ready for `assure runs retry`.
    Hold,
    /// Undo the completed steps, then fail.
    Rollback,
}

#[derive(Args)]
struct WorkerArgs {
    /// Directory of the assure-step-* binaries (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<std::path::PathBuf>,
    /// Steps run at once, across all queues.
    #[arg(long, default_value_t = 8, env = "ASSURE_WORKER_CONCURRENCY")]
    concurrency: usize,
    /// Of those, steps that call AWS Organizations (preflight, logging-bucket, access-analyzer,
    /// scps, rollback). With ASSURE_ORGANIZATIONS_RPS set, they split that budget between them.
    #[arg(long, default_value_t = 2, env = "ASSURE_WORKER_ORG_CONCURRENCY")]
    org_concurrency: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ASSURE_LOG").unwrap_or_else(|_| "warn".into()))
        .with_target(false)
        .init();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            if let Some(step) = e.downcast_ref::<StepError>() {
                eprintln!("error: {}", step.message);
                eprintln!("  ({}; see {})", step.name, step.name.doc_path());
                if step.name == assure_contract::ErrorName::InvalidInput {
                    return ExitCode::from(2);
                }
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Local(cmd) => local::run(cmd, g.output == Output::Json).await,
        Command::Deploy(args) => deploy_cmd(g, args).await,
        Command::Onboard(args) => onboard_cmd(g, args).await,
        Command::Verify(args) => verify_cmd(g, args).await,
        Command::Plan(args) => plan_cmd(g, args).await,
        Command::Runs(RunsCommand::Retry { run, timeout }) => retry_cmd(g, &run, timeout).await,
        Command::Runs(RunsCommand::Rollback { run }) => rollback_cmd(g, &run).await,
        Command::Runs(RunsCommand::List { account, status, since }) => {
            list_cmd(g, account.as_deref(), status.as_deref(), since.as_deref()).await
        }
        Command::Runs(RunsCommand::History { run }) => history_cmd(g, &run).await,
        Command::Runs(RunsCommand::Report { run, format, out }) => report_cmd(g, &run, format, out).await,
        Command::Runs(RunsCommand::Show { run }) => show_cmd(g, &run).await,
        Command::Worker(args) => worker_cmd(g, args).await,
        Command::Config(ConfigCommand::Schema) => {
            println!("{}", serde_json::to_string_pretty(&assure_contract::Config::schema())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let Some(path) = file.or_else(|| g.config.clone()) else {
                return Err(StepError::invalid_input("config check: name a file (or set --config)").into());
            };
            let c = config::load(&path)?;
            if g.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                println!("{}", toml::to_string(&c)?);
                eprintln!("{}: valid", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "assure", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The configuration file, when one is given.
fn config_of(g: &Global) -> Result<Option<assure_contract::Config>, StepError> {
    g.config.as_deref().map(config::load).transpose()
}

/// The operator's connection: the caller's own credentials in the pipeline account, and member
/// accounts reached through the operator role (the member role trusts it and the step roles only).
async fn connect(g: &Global) -> anyhow::Result<Aws> {
    Ok(Aws::load(g.profile.as_deref(), g.region.as_deref()).await?.through(assure_core::infra::OPERATOR_ROLE))
}

fn parse_regions(list: &[String]) -> Result<Vec<Region>, StepError> {
    list.iter()
        .map(|r| r.trim().parse::<Region>().map_err(|e| StepError::invalid_input(format!("--regions: {}", e.message))))
        .collect()
}

async fn deploy_cmd(g: &Global, args: DeployArgs) -> anyhow::Result<ExitCode> {
    let file = config_of(g)?;
    let org = file.as_ref().map(|c| &c.organization);
    let account = |flag: Option<String>, name: &str, from_file: Option<&AccountId>| -> Result<AccountId, StepError> {
        match flag {
            Some(s) => s.parse().map_err(|e: StepError| StepError::invalid_input(format!("--{name}: {}", e.message))),
            None => from_file.cloned().ok_or_else(|| {
                StepError::invalid_input(format!(
                    "--{name} is required (or organization.{} in the --config file)",
                    name.replace('-', "_")
                ))
            }),
        }
    };
    let logging = account(args.logging_account, "logging-account", org.map(|o| &o.logging_account))?;
    let security = account(args.security_account, "security-account", org.map(|o| &o.security_account))?;
    let regions = match (&args.regions, &file) {
        (Some(r), _) => parse_regions(r)?,
        (None, Some(c)) => c.regions.clone(),
        (None, None) => vec![assure_contract::Region::try_from("us-east-1".to_owned())?],
    };
    let role_name = args
        .role_name
        .or_else(|| file.as_ref().map(|c| c.role_name.clone()))
        .unwrap_or_else(|| assure_contract::DEFAULT_ROLE_NAME.to_owned());
    let Some(home) = regions.first().cloned() else { bail!("--regions: at least one region is needed") };
    let aws = connect(g).await?;
    let management: AccountId = aws.pipeline().account.clone();
    let settings = Settings {
        org: OrgLayout { management, logging, security },
        regions,
        home_region: home,
        role_name,
        notify: file.and_then(|c| c.notifications),
    };
    if args.settings_only {
        let changes = deploy::write_settings(&aws, &settings).await?;
        if g.output == Output::Json {
            println!("{}", serde_json::json!({"changes": changes, "settings": settings}));
        } else {
            eprintln!("{}", if changes.is_empty() { "settings already up to date" } else { "wrote deployment.json" });
        }
        return Ok(ExitCode::SUCCESS);
    }
    let d = deploy::deploy(&aws, &settings).await?;
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        for c in &d.changes {
            eprintln!("  {c}");
        }
        if d.changes.is_empty() {
            eprintln!("already up to date");
        }
        println!("state machine  {}", d.state_machine_arn);
        println!("bulk machine   {}", d.bulk_state_machine_arn);
        println!("checkpoints    s3://{}", d.checkpoint_bucket);
        for (step, url) in &d.queues {
            println!("queue          {step:<16} {url}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The run input for `account` from the deployment's settings and the flags, validated against the
/// organization (read-only, so bad input changes nothing). Returns the connection with the role set.
async fn run_input(
    g: &Global,
    account: &str,
    regions: Option<&[String]>,
    run_id: Option<&str>,
    policy: FailurePolicy,
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
    let run = RunInput {
        run_id,
        account,
        regions,
        home_region: settings.home_region.clone(),
        org: settings.org.clone(),
        role_name: settings.role_name.clone(),
        policy,
        notify: settings.notify.clone(),
    };
    let aws = aws.with_role(&run.role_name);
    assure_core::steps::preflight::validate(&aws, &run).await?;
    Ok((aws, run))
}

async fn plan_cmd(g: &Global, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (aws, run) = run_input(g, &args.account, args.regions.as_deref(), None, FailurePolicy::Hold).await?;
    let planned = assure_core::plan::run(&aws.planning(), &run).await?;
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

async fn verify_cmd(g: &Global, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (aws, run) = run_input(g, &args.account, args.regions.as_deref(), None, FailurePolicy::Hold).await?;
    let evidence = assure_core::steps::verify::check(&aws, &run).await?;
    let failed = assure_core::steps::verify::failures(&evidence);
    if g.output == Output::Json {
        let doc = serde_json::json!({
            "account": run.account, "regions": run.regions, "compliant": failed.is_empty(), "evidence": evidence
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for e in &evidence {
            let cis = assure_contract::Control::find(&e.control).and_then(|c| c.cis).unwrap_or("-");
            let what = if e.passed { e.resource.clone() } else { format!("{}: {}", e.resource, e.detail) };
            let mark = if e.passed { "✓" } else { "✗" };
            println!("{mark} {:<36} {:<15} CIS {cis:<6} {what}", e.control, e.region);
        }
        println!();
        println!("{}/{} controls hold in account {}", evidence.len() - failed.len(), evidence.len(), run.account);
    }
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("not compliant: {} control(s) do not hold:", failed.len());
    for f in &failed {
        eprintln!("  {f}");
    }
    Ok(ExitCode::FAILURE)
}

async fn onboard_cmd(g: &Global, args: OnboardArgs) -> anyhow::Result<ExitCode> {
    let options = config_of(g)?.map(|c| c.options).unwrap_or_default();
    let policy = match args.on_failure {
        Some(Policy::Hold) => FailurePolicy::Hold,
        Some(Policy::Rollback) => FailurePolicy::Rollback,
        None => options.on_failure,
    };
    let timeout = args.timeout.unwrap_or(options.timeout_seconds);
    if args.account.is_none() {
        let concurrency = args.concurrency.unwrap_or(options.concurrency);
        return bulk_cmd(g, &args, policy, concurrency, timeout).await;
    }
    // Bad input fails here, before the run starts and before any change.
    let account = args.account.as_deref().unwrap_or_default();
    let (aws, run) = run_input(g, account, args.regions.as_deref(), args.run_id.as_deref(), policy).await?;

    let arn = runs::start(&aws, &run).await?;
    eprintln!("run {} started: {} in {} region(s)", run.run_id, run.account, run.regions.len());
    follow(g, &aws, &run, &arn, timeout).await
}

/// `--since`: a duration back from now (`30m`, `24h`, `7d`) or a date, as a time.
fn parse_since(s: &str, now: time::OffsetDateTime) -> Result<time::OffsetDateTime, StepError> {
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

/// Many accounts in one bulk execution.
async fn bulk_cmd(
    g: &Global,
    args: &OnboardArgs,
    policy: FailurePolicy,
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
            assure_core::bulk::accounts_from_file(&text, &path.display().to_string())?
        }
        (None, Some(ou)) => {
            let all = assure_core::bulk::accounts_in_ou(&aws, &settings.org, &settings.home_region, ou).await?;
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
            account: a.clone(),
            regions: regions.clone(),
            home_region: settings.home_region.clone(),
            org: settings.org.clone(),
            role_name: settings.role_name.clone(),
            policy,
            notify: settings.notify.clone(),
        })
        .collect();
    assure_core::bulk::validate(&aws, &runs).await?;
    let bulk_id = format!("bulk-{now}");
    let arn = assure_core::bulk::start(&aws, &bulk_id, &runs, concurrency).await?;
    eprintln!(
        "bulk run {bulk_id} started: {} account(s), {} at once, {} region(s) each",
        runs.len(),
        concurrency,
        regions.len()
    );
    let json = g.output == Output::Json;
    let tty = std::io::stderr().is_terminal();
    let bar = progress_bar(tty, runs.len(), "{pos}/{len} accounts  {elapsed}");
    let started = std::time::Instant::now();
    let followed = assure_core::bulk::follow(
        &aws,
        &arn,
        &runs,
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
            "{:<14} {:<34} {:<10} {:>8} {:>8} {:>9}  ERROR",
            "ACCOUNT", "RUN", "STATUS", "SECONDS", "CHANGES", "CONTROLS"
        );
        for r in &results {
            println!(
                "{:<14} {:<34} {:<10} {:>8} {:>8} {:>9}  {}",
                r.account,
                r.run_id,
                r.status,
                r.seconds.map(|s| format!("{s:.1}")).unwrap_or_else(|| "-".into()),
                r.changes,
                format!("{}/{}", r.controls_passed, r.controls),
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
    let run = run_of(&aws, run_id.as_str()).await?;
    let mut records = assure_core::checkpoint::Store::new(&aws).list(run_id.as_str()).await?;
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
            e.detail
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
        ReportFormat::Html => assure_core::report::html(&audit),
        ReportFormat::Md => assure_core::report::markdown(&audit),
        ReportFormat::Json => serde_json::to_string_pretty(&audit)? + "\n",
    };
    match out {
        Some(path) => {
            // Written beside the target, then renamed: a failure never leaves half a report.
            let tmp = path.with_extension("partial");
            std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            let passed = audit.controls.iter().filter(|c| c.passed).count();
            eprintln!(
                "wrote {} ({} bytes): run {} {}, {passed}/{} controls, {} changes",
                path.display(),
                text.len(),
                audit.run.run_id,
                audit.status,
                audit.controls.len(),
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
    let run = run_of(&aws, run_id.as_str()).await?;
    let aws = aws.with_role(&run.role_name);
    let report = assure_core::rollback::run(&aws, &run).await?;
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for r in &report.restored {
            println!("restored        {r}");
        }
        for r in &report.not_restorable {
            println!("not restorable  {r}");
        }
    }
    Ok(ExitCode::SUCCESS)
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
async fn follow(g: &Global, aws: &Aws, run: &RunInput, arn: &str, timeout: u64) -> anyhow::Result<ExitCode> {
    eprintln!("  execution {arn}");
    let json = g.output == Output::Json;
    let tty = std::io::stderr().is_terminal();
    // On a terminal, a bar over the run's tasks (each step once, regional steps once per region);
    // elsewhere (CI logs, pipes) plain lines only.
    let tasks = assure_contract::StepName::ALL
        .iter()
        .filter(|s| **s != assure_contract::StepName::Rollback)
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
        let evidence: Vec<_> = finished.outputs.iter().flat_map(|o| o.evidence.iter()).collect();
        let passed = evidence.iter().filter(|e| e.passed).count();
        println!();
        println!("run        {}", run.run_id);
        println!("account    {}", run.account);
        println!("regions    {}", run.regions.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "));
        println!("status     {}  ({:.1}s)", finished.status, finished.seconds);
        println!("changes    {changes}");
        println!("controls   {passed}/{} verified", evidence.len());
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

async fn worker_cmd(g: &Global, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let aws = Arc::new(connect(g).await?);
    let bin_dir = match args.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()
            .context("locating this binary")?
            .parent()
            .context("this binary has no directory")?
            .to_path_buf(),
    };
    eprintln!("worker: running steps from {} against account {}", bin_dir.display(), aws.pipeline().account);
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    assure_core::worker::supervise(aws, bin_dir, args.concurrency, args.org_concurrency, stop).await;
    Ok(ExitCode::SUCCESS)
}

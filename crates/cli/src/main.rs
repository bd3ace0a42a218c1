//! `assure`: glue between the command line and `assure_core`. This file only parses the command
//! line and dispatches to the command families, one file each: `local` (the local cloud), `deploy`
//! (deploy, bootstrap), `onboard` (onboard, plan, verify), `runs`, `fleet` (fleet, offboard), `config`, `worker`; `global`
//! holds the flags every command shares. Each validates its flags into typed values once, calls the
//! core, and prints data on stdout and everything else on stderr.

mod config;
mod deploy;
mod fleet;
mod global;
mod local;
mod onboard;
mod runs;
mod worker;

use std::process::ExitCode;

use assure_contract::StepError;
use clap::{Parser, Subcommand};

use crate::global::Global;

/// Bring AWS accounts into your organization's security baseline, taking over what they already had.
///
/// Quick start (no AWS account needed):
///   eval "$(assure local up)"      # the local cloud, in the background
///   assure local seed              # a demo organization with brownfield accounts
///   assure bootstrap --pipeline-account S                 # as the management account
///   assure deploy --logging-account L                     # as the security account S
///   assure onboard ACCOUNT_ID                             # as the security account S
///
/// The pipeline runs in an account of the organization other than its management account (the
/// security account is the usual choice); the management account keeps only the bootstrap stack.
/// Against AWS, use your usual credentials (--profile, --region or the AWS_* variables).
#[derive(Parser)]
#[command(name = "assure", version, propagate_version = true, verbatim_doc_comment)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The local cloud: AWS emulated on 127.0.0.1 (moto plus assure's extension).
    #[command(subcommand)]
    Local(local::LocalCommand),
    /// Prepare the management account for a pipeline in another account: the stack of
    /// infra/management.template.json, in us-east-1. Run it with the management account's
    /// credentials, before `assure deploy`. It holds all assure keeps there: the role
    /// assure-management for the calls only the management account may make (trusted access,
    /// delegated administrators, the GuardDuty administrator, centralized root access), trusted
    /// by the pipeline's roles that make them; the organization's delegation policy, which lets the
    /// pipeline account read the organization and manage its SCPs; and the rule that forwards
    /// accounts' joins to the pipeline account (AutoOnboard). Running it again changes nothing.
    ///
    /// Example: assure bootstrap --pipeline-account 222222222222
    #[command(verbatim_doc_comment)]
    Bootstrap(deploy::BootstrapArgs),
    /// Deploy (or update) the pipeline in the current account through CloudFormation: the stack of
    /// infra/assure.template.json (SAM), after the artifacts stack and the upload of the step
    /// package, definitions and template. Run it in the account the management account's
    /// bootstrap names (`assure bootstrap`), the security account by default; never in the
    /// management account. Prints the stack's progress; a failure names the resource and
    /// CloudFormation's reason. Running it again with nothing changed changes nothing.
    ///
    /// Examples:
    ///   assure deploy --logging-account 111111111111 --regions us-east-1,eu-west-1   # in the security account
    ///   assure deploy --package target/lambda/assure-step --logging-account …         # on AWS
    #[command(verbatim_doc_comment)]
    Deploy(deploy::DeployArgs),
    /// Onboard one account, or many: start the run(s), show progress, end with a summary.
    ///
    /// Many accounts (--accounts-file or --ou) run in one bulk execution, each account its own
    /// child run, at most --concurrency at once; one account's failure does not stop the others.
    ///
    /// Exit status: 0 when every run succeeded, 2 when the input was rejected as invalid
    /// (Assure.InvalidInput) before anything changed, 1 otherwise.
    ///
    /// Examples:
    ///   assure onboard 123456789012 --regions us-east-1,eu-west-1
    ///   assure onboard --accounts-file imported.txt --concurrency 4
    ///   assure onboard --ou ou-ab12-cdef3456
    #[command(verbatim_doc_comment)]
    Onboard(onboard::OnboardArgs),
    /// Show what onboarding an account would change, from read-only calls only.
    ///
    /// Runs every step in plan mode, in the state machine's order; a guard in the AWS clients
    /// refuses any mutating call. Exit status: 0, or 2 when the input was rejected.
    ///
    /// Example: assure plan 123456789012 --regions us-east-1,eu-west-1 --output json
    Plan(onboard::PlanArgs),
    /// Check every control of an account, read-only; exit 0 only when all hold.
    ///
    /// Names each control that does not hold, with its region. Exit status: 0 all controls hold,
    /// 1 some do not, 2 the input was rejected.
    ///
    /// Example: assure verify 123456789012 --output json
    Verify(onboard::VerifyArgs),
    /// Runs: list, show, history, report, retry and roll back runs.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// The fleet, every onboarded account at once: its status (baseline version, last check,
    /// holds or not), a check of every account now, and the upgrade of those behind.
    ///
    /// The pipeline also checks the fleet on its own, on the configuration file's
    /// fleet.schedule (daily by default), and sends drift as EventBridge events.
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
    /// Take an account out of the baseline: roll back its runs, newest first, so its
    /// configuration is what it was before it was first onboarded (but for what each report
    /// names as not restorable), and take it out of the fleet, leaving a record.
    ///
    /// Exit status: 0 done, 1 a compensation failed (the account stays in the fleet; run it again),
    /// 2 the account is not onboarded.
    ///
    /// Example: assure offboard 123456789012
    Offboard(fleet::OffboardArgs),
    /// The configuration file: print its JSON Schema, or check a file against it.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Print a shell completion script.
    ///
    /// Example: assure completions bash > ~/.local/share/bash-completion/completions/assure
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Play Lambda locally: run the pipeline stack's functions, fed by their SQS event source
    /// mappings.
    ///
    /// `assure local up` starts one for you; run this only to watch workers in the foreground.
    Worker(worker::WorkerArgs),
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
        Command::Local(cmd) => local::run(cmd, g.json()).await,
        Command::Bootstrap(args) => deploy::bootstrap(g, args).await,
        Command::Deploy(args) => deploy::run(g, args).await,
        Command::Onboard(args) => onboard::onboard(g, args).await,
        Command::Verify(args) => onboard::verify(g, args).await,
        Command::Plan(args) => onboard::plan(g, args).await,
        Command::Runs(cmd) => runs::run(g, cmd).await,
        Command::Fleet(cmd) => fleet::run(g, cmd).await,
        Command::Offboard(args) => fleet::offboard(g, args).await,
        Command::Config(cmd) => config::run(g, cmd),
        Command::Worker(args) => worker::run(g, args).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "assure", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

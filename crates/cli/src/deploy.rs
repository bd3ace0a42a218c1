//! `assure deploy`: the pipeline in the current account, through CloudFormation (the template users
//! deploy, `infra/assure.template.json`), or only its settings; `assure bootstrap`: the management
//! account's stack for it (`infra/management.template.json`).

use std::process::ExitCode;

use anyhow::bail;
use assure_contract::{AccountId, OrgLayout, StepError};
use assure_core::pipeline::deploy::{self, Settings};
use clap::Args;

use crate::global::{config_of, connect, parse_regions, Global, Output};

#[derive(Args)]
pub(crate) struct DeployArgs {
    /// The organization's logging account (holds the shared logging bucket). Default: the config
    /// file's organization.logging_account.
    #[arg(long)]
    logging_account: Option<String>,
    /// The organization's security account (delegated administrator for GuardDuty, Access Analyzer,
    /// Config), where the pipeline runs: the current account. Default: the config file's
    /// organization.security_account, else the current account.
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
    /// The step package: a zip with `bootstrap` at its root, or the directory `cargo xtask package`
    /// writes (target/lambda/assure-step). Required on AWS. Against the local cloud the default is a
    /// package that runs the assure-step binary beside this one, which the worker runs as Lambda would.
    #[arg(long)]
    package: Option<std::path::PathBuf>,
    /// Start an onboarding whenever an account joins the organization (the stack must be in
    /// us-east-1, where Organizations sends its events).
    #[arg(long)]
    auto_onboard: bool,
    /// Only record the settings, for a pipeline stack deployed by other means.
    #[arg(long)]
    settings_only: bool,
}

pub(crate) async fn run(g: &Global, args: DeployArgs) -> anyhow::Result<ExitCode> {
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
    let aws = connect(g).await?;
    let here = aws.pipeline().account.clone();
    let security =
        account(args.security_account, "security-account", org.map(|o| &o.security_account).or(Some(&here)))?;
    let regions = match (&args.regions, &file) {
        (Some(r), _) => parse_regions(r)?,
        (None, Some(c)) => c.regions.clone(),
        (None, None) => vec![assure_contract::Region::try_from("us-east-1".to_owned())?],
    };
    let role_name = args
        .role_name
        .or_else(|| file.as_ref().map(|c| c.role_name.clone()))
        .unwrap_or_else(|| assure_contract::DEFAULT_ROLE_NAME.to_owned());
    // The SCPs exempt this name as `arn:aws:iam::*:role/NAME`: IAM's role-name characters only, so
    // no wildcard can widen the exemption (the configuration file's schema holds it to the same).
    let valid_name = (1..=64).contains(&role_name.len())
        && role_name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !valid_name {
        return Err(StepError::invalid_input(format!(
            "--role-name: {role_name:?} is not an IAM role name (1 to 64 of A-Z a-z 0-9 _+=,.@-)"
        ))
        .into());
    }
    let Some(home) = regions.first().cloned() else { bail!("--regions: at least one region is needed") };
    assure_contract::OrgLayout::distinct_roles(&logging, &security)
        .map_err(|e| StepError::invalid_input(format!("--security-account: {}", e.message)))?;
    let management = deploy::management_account(&aws).await?;
    if here != management && security != here {
        return Err(StepError::invalid_input(format!(
            "--security-account: {security} is not this account ({here}): the pipeline runs in the security account (docs/decisions/0003-the-pipeline-in-the-security-account.md); run `assure deploy` there"
        ))
        .into());
    }
    if here == management {
        return Err(StepError::invalid_input(format!(
            "{here} is the organization's management account: the pipeline runs in another account (the security account, say), which SCPs bind. There, after `assure bootstrap --pipeline-account ACCOUNT` here, run `assure deploy`"
        ))
        .into());
    }
    for (flag, account) in [("logging-account", &logging), ("security-account", &security)] {
        if *account == management {
            return Err(StepError::invalid_input(format!(
                "--{flag}: {account} is the management account; SCPs do not bind it, so it cannot hold what they protect"
            ))
            .into());
        }
    }
    let settings = Settings {
        org: OrgLayout { management, logging, security },
        regions,
        home_region: home,
        role_name,
        notify: file.as_ref().and_then(|c| c.notifications.clone()),
        fleet: file.map(|c| c.fleet).unwrap_or_default(),
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
    let package = match (args.package, aws.endpoint_url()) {
        (Some(path), _) => deploy::Package::Built(path),
        (None, Some(_)) => deploy::Package::Local(
            std::env::current_exe()?
                .parent()
                .map(|d| d.join(assure_contract::STEP_BINARY))
                .unwrap_or_else(|| assure_contract::STEP_BINARY.into()),
        ),
        (None, None) => {
            return Err(StepError::invalid_input(
                "--package is required on AWS: build it with `cargo xtask package` (target/lambda/assure-step)",
            )
            .into())
        }
    };
    let options = deploy::Options { package, auto_onboard: args.auto_onboard };
    let quiet = g.output == Output::Json;
    // The stack's own transitions and every failure; each resource's events are in the stack's
    // history (`aws cloudformation describe-stack-events`).
    let mut progress = |line: &str| {
        let resource = line.split_whitespace().nth(3).is_some_and(|w| w.starts_with("AWS::"));
        if !quiet && (!resource || line.contains("FAILED")) {
            eprintln!("  {line}");
        }
    };
    let d = deploy::deploy(&aws, &settings, &options, &mut progress).await?;
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        if d.changes.is_empty() {
            eprintln!("already up to date");
        } else {
            eprintln!("{} changes", d.changes.len());
        }
        println!("stack          {}", d.stack_id);
        println!("state machine  {}", d.state_machine_arn);
        println!("bulk machine   {}", d.bulk_state_machine_arn);
        println!("checkpoints    s3://{}", d.checkpoint_bucket);
        for (step, url) in &d.queues {
            println!("queue          {step:<16} {url}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub(crate) struct BootstrapArgs {
    /// The account the pipeline runs in, where you then run `assure deploy`: the organization's
    /// security account (the delegated administrator of GuardDuty, Access Analyzer and Config;
    /// `assure deploy` runs only there), never the management account. Default: the config file's
    /// organization.security_account.
    #[arg(long)]
    pipeline_account: Option<String>,
}

pub(crate) async fn bootstrap(g: &Global, args: BootstrapArgs) -> anyhow::Result<ExitCode> {
    let file = config_of(g)?;
    let pipeline: AccountId = match args.pipeline_account {
        Some(s) => {
            s.parse().map_err(|e: StepError| StepError::invalid_input(format!("--pipeline-account: {}", e.message)))?
        }
        None => file.as_ref().map(|c| c.organization.security_account.clone()).ok_or_else(|| {
            StepError::invalid_input(
                "--pipeline-account is required (or organization.security_account in the --config file)",
            )
        })?,
    };
    let aws = connect(g).await?;
    let quiet = g.output == Output::Json;
    let mut progress = |line: &str| {
        if !quiet {
            eprintln!("  {line}");
        }
    };
    let b = deploy::bootstrap(&aws, &pipeline, &mut progress).await?;
    if g.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&b)?);
    } else {
        eprintln!(
            "{}",
            if b.changes.is_empty() { "already up to date".to_owned() } else { format!("{} changes", b.changes.len()) }
        );
        println!("stack            {}", b.stack_id);
        println!("management role  {}", b.management_role_arn);
        println!("pipeline account {} (run `assure deploy` there)", b.pipeline_account);
    }
    Ok(ExitCode::SUCCESS)
}

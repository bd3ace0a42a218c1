//! The step binary: run one task message of the configured step with `assure_core`.
//!
//! One binary serves every step ([`entry`]): the step is its function's configuration
//! (`ASSURE_STEP`), so the release build links once and every function deploys the same package,
//! while each function still runs only its own step, as its own role.
//!
//! Two ways in, one handler:
//! - on AWS Lambda, or under the local worker (`AWS_LAMBDA_RUNTIME_API` is set), the binary serves
//!   the runtime API; each SQS record is a task message (from the step queue: run it; from its
//!   dead-letter queue: fail its task), and a record whose task could not be answered is reported
//!   as a batch item failure, so SQS delivers it again;
//! - anywhere else (a step run by hand; `assure worker` runs the binary in its Lambda mode), the
//!   message body arrives on stdin; exit status 0 means Step Functions was answered and the
//!   message may be deleted, anything else leaves the message on the queue to come back.

use std::io::Read;
use std::process::ExitCode;

use assure_contract::StepName;
use assure_core::aws::Aws;
use assure_core::pipeline::worker::{fail_dead_letter, handle_message, Delivery, Outcome};

/// The whole of the step binary's `main`: `--version`, or the step named by `--step NAME` or
/// `ASSURE_STEP`, run by [`main`]. Exits 2 naming what is missing or wrong.
pub async fn entry() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--version") {
        println!("{} {}", STEP_BINARY, env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let named = match args.as_slice() {
        [flag, name] if flag == "--step" => Some(name.clone()),
        [] => std::env::var(STEP_ENV).ok(),
        _ => {
            eprintln!("usage: {STEP_BINARY} [--step NAME] (or {STEP_ENV}=NAME), the task message on stdin; {STEP_BINARY} --version");
            return ExitCode::from(2);
        }
    };
    let steps = StepName::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    match named.as_deref().map(|n| (n, StepName::parse(n))) {
        Some((_, Some(step))) => main(step).await,
        Some((n, None)) => {
            eprintln!("{STEP_BINARY}: {STEP_ENV}: {n:?} is not a step; one of {steps}");
            ExitCode::from(2)
        }
        None => {
            eprintln!("{STEP_BINARY}: which step? Set {STEP_ENV} (the function's configuration) or pass --step NAME; one of {steps}");
            ExitCode::from(2)
        }
    }
}

pub use assure_contract::{STEP_BINARY, STEP_ENV};

/// Runs `step`: on Lambda, or for one message on stdin.
pub async fn main(step: StepName) -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return lambda(step).await;
    }
    let started = std::time::Instant::now();
    let code = local(step).await;
    record_stats(step, started);
    code
}

/// Where a step binary appends `{step, seconds, peakKiB}` when it ends (the benchmark reads it).
pub const STATS_ENV: &str = "ASSURE_STEP_STATS";

/// Appends this process's wall time and peak resident memory (VmHWM) to the stats file, if set.
fn record_stats(step: StepName, started: std::time::Instant) {
    let Some(path) = std::env::var_os(STATS_ENV) else { return };
    let peak_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()));
    let line = serde_json::json!({
        "step": step.as_str(), "seconds": started.elapsed().as_secs_f64(), "peakKiB": peak_kib,
    });
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

async fn local(step: StepName) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ASSURE_LOG").unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    let mut body = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut body) {
        tracing::error!(%step, error = %e, "cannot read the task message from stdin");
        return ExitCode::FAILURE;
    }
    let aws = match Aws::load(None, None).await {
        Ok(a) => a.with_step(step.as_str()),
        Err(e) => {
            tracing::error!(%step, error = %e, "cannot reach AWS");
            return ExitCode::FAILURE;
        }
    };
    match handle_message(aws, &body, Some(step), None).await {
        Ok(Outcome::Succeeded | Outcome::Failed(_) | Outcome::Abandoned) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(%step, error = %e, "could not answer Step Functions; the message will return");
            ExitCode::FAILURE
        }
    }
}

/// Serves the Lambda runtime API: one SQS batch per invocation.
async fn lambda(step: StepName) -> ExitCode {
    use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
    use lambda_runtime::{service_fn, LambdaEvent};

    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ASSURE_LOG").unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    // One configuration for the process's life; each task gets its own connection from it, and
    // the sessions it assumes in other accounts are kept for the process (see `assure_core::aws`).
    let sdk = Aws::load_config(None, None).await;
    let handler = service_fn(move |event: LambdaEvent<SqsEvent>| {
        let sdk = sdk.clone();
        async move {
            let mut failures = Vec::new();
            for record in event.payload.records {
                let started = std::time::Instant::now();
                let id = record.message_id.clone().unwrap_or_default();
                let body = record.body.unwrap_or_default();
                let delivery = Delivery {
                    queue_arn: record.event_source_arn.unwrap_or_default(),
                    receipt_handle: record.receipt_handle.unwrap_or_default(),
                    receive_count: record
                        .attributes
                        .get("ApproximateReceiveCount")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1),
                };
                let answered = match Aws::from_sdk_config(sdk.clone()).await {
                    Ok(aws) if delivery.from_dead_letter_queue() => {
                        fail_dead_letter(aws.with_step(step.as_str()), &body, &delivery).await.is_ok()
                    }
                    Ok(aws) => {
                        handle_message(aws.with_step(step.as_str()), &body, Some(step), Some(&delivery)).await.is_ok()
                    }
                    Err(e) => {
                        tracing::error!(%step, error = %e, "cannot reach AWS");
                        false
                    }
                };
                if !answered {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    failures.push(failure);
                }
                record_stats(step, started);
            }
            let mut response = SqsBatchResponse::default();
            response.batch_item_failures = failures;
            Ok::<_, lambda_runtime::Error>(response)
        }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(%step, error = %e, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}

//! Glue shared by the step binaries: read one task message, run it with `assure_core`, exit.
//!
//! A step binary is invoked once per SQS message (by Lambda's event source mapping on AWS, by
//! `assure worker` locally) with the message body on stdin. Exit status 0 means Step Functions was
//! answered (success or failure) and the message may be deleted; anything else leaves the message
//! on the queue to come back.

use std::io::Read;
use std::process::ExitCode;

use assure_contract::StepName;
use assure_core::aws::Aws;
use assure_core::worker::{handle_message, Outcome};

/// The whole of a step binary's `main`.
pub async fn main(step: StepName) -> ExitCode {
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
    match handle_message(aws, &body, Some(step)).await {
        Ok(Outcome::Succeeded | Outcome::Failed(_) | Outcome::Abandoned) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(%step, error = %e, "could not answer Step Functions; the message will return");
            ExitCode::FAILURE
        }
    }
}

//! `assure-step-logging-bucket`: runs the logging-bucket step for one task message on stdin.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    assure_steps::main(assure_contract::StepName::LoggingBucket).await
}

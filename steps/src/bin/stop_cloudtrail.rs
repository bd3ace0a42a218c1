//! `assure-step-stop-cloudtrail`: runs the stop-cloudtrail step for one task message on stdin.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    assure_steps::main(assure_contract::StepName::StopCloudTrail).await
}

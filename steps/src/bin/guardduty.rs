//! `assure-step-guardduty`: runs the guardduty step for one task message on stdin.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    assure_steps::main(assure_contract::StepName::GuardDuty).await
}

//! `assure-step-organization`: runs the organization step for one task message on stdin.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    assure_steps::main(assure_contract::StepName::Organization).await
}

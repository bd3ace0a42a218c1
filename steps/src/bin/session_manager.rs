//! `assure-step-session-manager`: runs the session-manager step for one task message on stdin.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    assure_steps::main(assure_contract::StepName::SessionManager).await
}

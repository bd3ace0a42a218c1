//! `assure-step-rollback`: runs the rollback step for one task message on stdin.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    assure_steps::main(assure_contract::StepName::Rollback).await
}

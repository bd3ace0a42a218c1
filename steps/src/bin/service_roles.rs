//! `assure-step-service-roles`: runs the service-roles step for one task message on stdin.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    assure_steps::main(assure_contract::StepName::ServiceRoles).await
}

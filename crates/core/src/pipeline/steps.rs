//! A task's step: a control's step goes to that control, the pipeline's own steps to their module.
//! Each step reads first and writes only what differs, so running it twice changes nothing the
//! second time; each returns a [`StepOutput`] with the changes it made and, where it changed
//! something, the configuration it found before.

use assure_contract::{RunInput, StepError, StepName, StepOutput, TaskMessage};
use serde_json::Value;

use crate::aws::Aws;
use crate::controls::{self, Known};
use crate::pipeline::{discover, fleet, join, lock, organization, preflight, rollback, service_roles, verify};

/// Runs the step a task asks for; `known` is what discover read of the task's region, when the
/// step may start from it ([`Known`]).
pub async fn dispatch(aws: &Aws, task: &TaskMessage, known: Known<'_>) -> Result<StepOutput, StepError> {
    let run = &task.run;
    let region = &task.region;
    match task.step {
        StepName::Preflight => {
            // One run per account at a time: the execution takes the account's lock (the CLI took
            // it already for the runs it starts) before anything else.
            if let Some(arn) = &task.execution {
                let holder = lock::Holder::Execution { arn: arn.clone() };
                lock::acquire(aws, &lock::Lock::new(&run.account, run.run_id.as_str(), holder)).await?;
            }
            preflight::run(aws, run).await
        }
        StepName::Organization => organization::run(aws, run).await,
        StepName::Discover => discover::run(aws, run, region).await,
        StepName::ServiceRoles => service_roles::run(aws, run).await,
        StepName::Verify => verify::run(aws, run).await,
        StepName::Rollback => rollback_step(aws, run).await,
        StepName::Join => join::run(aws, task).await,
        StepName::Watch => fleet::run(aws, task).await,
        step => match controls::baseline::owner(step) {
            Some(control) => (control.apply)(controls::StepCall { aws, run, step, region, known }).await,
            None => Err(StepError::internal(format!("step {step} belongs to no control"))),
        },
    }
}

/// The rollback step: the failure policy `rollback`, inside the state machine.
async fn rollback_step(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    let report = rollback::run(aws, run).await?;
    if let Some(first) = report.failed.first() {
        // The step fails as its first failed compensation did (a retryable one is retried, and the
        // retry runs only what failed); every failure is named.
        let failed: Vec<String> = report.failed.iter().map(|f| format!("{}: {}", f.item, f.error)).collect();
        return Err(StepError::new(
            first.error.name,
            format!(
                "rollback: {} compensation(s) failed ({} restored, {} not restorable): {}",
                failed.len(),
                report.restored.len(),
                report.not_restorable.len(),
                failed.join("; ")
            ),
        ));
    }
    Ok(StepOutput {
        step: StepName::Rollback,
        region: run.home_region.clone(),
        summary: format!("{} restored, {} not restorable", report.restored.len(), report.not_restorable.len()),
        changes: vec![],
        evidence: vec![],
        snapshot: serde_json::to_value(&report).unwrap_or(Value::Null),
    })
}

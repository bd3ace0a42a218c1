//! The steps. Each reads first and writes only what differs, so running it twice changes nothing
//! the second time; each returns a [`StepOutput`] with the changes it made and, where it changed
//! something, the configuration it found before.

pub mod discover;
pub mod logging_bucket;
pub mod preflight;
pub mod verify;

use assure_contract::{StepError, StepName, StepOutput, TaskMessage};

use crate::aws::Aws;

/// Runs the step a task asks for.
pub async fn dispatch(aws: &Aws, task: &TaskMessage) -> Result<StepOutput, StepError> {
    let run = &task.run;
    match task.step {
        StepName::Preflight => preflight::run(aws, run).await,
        StepName::Discover => discover::run(aws, run, &task.region).await,
        StepName::LoggingBucket => logging_bucket::apply(aws, run).await,
        StepName::Verify => verify::run(aws, run).await,
    }
}

//! The dry run: every step in plan mode, the controls' in the baseline's order (the state machine's),
//! from read-only calls only.
//! The service-roles step is not planned apart: the roles it makes ahead are the ones the steps that
//! hand them to services ensure, and the plan shows them there, once.
//! Each step records what it would change; the [`crate::aws::Aws::planning`] guard refuses any
//! mutating call, so a plan cannot change an account even by mistake.

use assure_contract::{Region, RunInput, StepError, StepName, StepOutput, TaskMessage};
use futures::future::try_join_all;

use crate::aws::Aws;
use crate::controls::{baseline, Known};
use crate::pipeline::steps::dispatch;

/// What one step would change, in one region.
pub type Planned = StepOutput;

async fn step(aws: &Aws, run: &RunInput, step: StepName, region: &Region) -> Result<Planned, StepError> {
    let task = TaskMessage {
        task_token: String::new(),
        step,
        region: region.clone(),
        run: run.clone(),
        execution: None,
        event: None,
    };
    dispatch(aws, &task, Known::default()).await
}

/// Plans a run. `aws` must be in plan mode.
pub async fn run(aws: &Aws, run: &RunInput) -> Result<Vec<Planned>, StepError> {
    if !aws.pipeline().plan {
        return Err(StepError::internal("plan::run needs an Aws in plan mode (Aws::planning)"));
    }
    let home = &run.home_region;
    let mut out = vec![step(aws, run, StepName::Preflight, home).await?];
    out.extend(try_join_all(run.regions.iter().map(|r| step(aws, run, StepName::Discover, r))).await?);
    // The controls' steps in the baseline's order, a regional one in every region at once.
    for &s in baseline::ALL.iter().flat_map(|c| c.steps) {
        if s.regional() {
            out.extend(try_join_all(run.regions.iter().map(|r| step(aws, run, s, r))).await?);
        } else {
            out.push(step(aws, run, s, home).await?);
        }
    }
    Ok(out)
}

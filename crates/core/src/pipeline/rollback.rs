//! Rollback: the controls' compensations (`Control::compensate`), in reverse order of
//! [`controls::baseline::ALL`], for the controls whose steps ran, from the snapshots the run's checkpoints
//! recorded, so the account's configuration equals its configuration before onboarding. Each
//! control reports by name what it cannot restore, never forcing it (foreign GuardDuty membership,
//! membership under the security account while the organization enrols every account,
//! detectors and their findings, the trail's log group, service-linked roles); shared resources
//! (the logging bucket and key, the organization's delegated administrators, analyzers, aggregator
//! and findings delivery) stay, since they serve every account.

use assure_contract::{RunInput, StepError};
use serde_json::{json, Value};

use crate::aws::Aws;
use crate::controls::{self, Report, Undo};
use crate::pipeline::checkpoint::{Status, Store};
use crate::pipeline::discover;

/// Rolls back `run` from its checkpoints.
pub async fn run(aws: &Aws, run: &RunInput) -> Result<Report, StepError> {
    let records = Store::new(aws).list(run.run_id.as_str()).await?;
    if records.is_empty() {
        return Err(StepError::invalid_input(format!("run {}: no checkpoints, nothing to roll back", run.run_id)));
    }
    let mut undo = Undo::new(aws, run);
    for r in records.into_iter().filter(|r| r.status != Status::Running) {
        let snapshot = match r.status {
            Status::Completed => r.output.map(|o| o.snapshot),
            _ => None,
        };
        undo.record(r.step, &r.region, snapshot);
    }
    let mut report = Report::default();
    let home = std::slice::from_ref(&run.home_region);
    for control in controls::baseline::ALL.iter().rev() {
        if !control.steps().iter().any(|s| undo.ran(*s)) {
            continue;
        }
        for region in if control.regional() { &run.regions[..] } else { home } {
            control.compensate(&undo, region, &mut report).await?;
        }
    }
    Ok(report)
}

/// The account's configuration in the fields rollback restores, for comparing before and after:
/// every control's snapshot part in every region, and the policies attached to the account.
pub async fn configuration(aws: &Aws, run: &RunInput) -> Result<Value, StepError> {
    let target = aws.account(&run.account, &run.home_region).await?;
    let mut regions = serde_json::Map::new();
    for region in &run.regions {
        let parts = discover::snapshot(&target.in_region(region)).await?;
        regions.insert(region.to_string(), Value::Object(discover::keyed(parts)));
    }
    let mgmt = aws.account(&run.org.management, &run.home_region).await?;
    let scps = controls::scps::attached_scps(&mgmt.organizations(), &run.account).await?;
    Ok(json!({"regions": regions, "scps": scps}))
}

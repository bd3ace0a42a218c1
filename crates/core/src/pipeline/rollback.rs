//! Rollback: the controls' compensations (`Control::compensate`), in reverse order of
//! [`controls::baseline::ALL`], for the controls whose steps ran, from the snapshots the run's checkpoints
//! recorded, so the account's configuration equals its configuration before onboarding. Each
//! control reports by name what it cannot restore, never forcing it (foreign GuardDuty membership,
//! membership under the security account while the organization enrols every account,
//! the trail's log group, service-linked roles); shared resources (the logging bucket and key, the
//! organization's delegated administrators, analyzers, aggregator and findings delivery) stay,
//! since they serve every account.
//!
//! A rollback is a saga that finishes: one compensation (a control in a region) failing does not
//! stop the others. Each one that finishes with everything restored is written to the run's
//! rollback ledger in the checkpoint bucket (`rollbacks/RUN.json`), so rolling the run back again
//! runs only what failed or left something it could not restore.

use std::collections::BTreeSet;

use assure_contract::{RunInput, StepError, StepName};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::aws::Aws;
use crate::controls::{self, Failed, Report, Undo};
use crate::pipeline::checkpoint::{Expect, Status, Store};
use crate::pipeline::discover;

/// The compensations of a run's rollbacks that finished.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    done: BTreeSet<String>,
}

fn ledger_key(run_id: &str) -> String {
    format!("rollbacks/{run_id}.json")
}

async fn read_ledger(aws: &Aws, run_id: &str) -> Result<Ledger, StepError> {
    Ok(Store::new(aws).get_json(&ledger_key(run_id)).await?.map(|(l, _)| l).unwrap_or_default())
}

async fn write_ledger(aws: &Aws, run_id: &str, ledger: &Ledger) -> Result<(), StepError> {
    Store::new(aws).put_json(&ledger_key(run_id), ledger, Expect::Any).await?;
    Ok(())
}

/// Rolls back `run` from its checkpoints: every compensation not finished by an earlier rollback,
/// each whatever the others do. The report's `failed` lists those that did not finish.
pub async fn run(aws: &Aws, run: &RunInput) -> Result<Report, StepError> {
    let records = Store::new(aws).list(run.run_id.as_str()).await?;
    if records.is_empty() {
        return Err(StepError::invalid_input(format!("run {}: no checkpoints, nothing to roll back", run.run_id)));
    }
    let mut undo = Undo::new(aws, run);
    for r in records.into_iter().filter(|r| r.status != Status::Running) {
        let snapshot = match (r.status, r.output) {
            (Status::Completed, Some(o)) => {
                undo.record_changes(o.changes);
                Some(o.snapshot)
            }
            _ => {
                undo.record_unknown(r.step);
                None
            }
        };
        undo.record(r.step, &r.region, snapshot);
    }
    let mut ledger = read_ledger(aws, run.run_id.as_str()).await?;
    let mut report = Report::default();
    let home = std::slice::from_ref(&run.home_region);
    for control in controls::baseline::ALL.iter().rev() {
        // The service-roles step made a role of the control in the account, maybe before its step
        // ran or without it (the roles in the security account serve every account and stay).
        let made_ahead = undo.ran(StepName::ServiceRoles)
            && (control.ahead.service_roles)(run).iter().any(|r| r.account == run.account);
        if !made_ahead && !control.steps.iter().any(|s| undo.ran(*s)) {
            continue;
        }
        for region in if control.regional() { &run.regions[..] } else { home } {
            let item = format!("{} {region}", control.name);
            if ledger.done.contains(&item) {
                report.already_done.push(item);
                continue;
            }
            let mut part = Report::default();
            let result = (control.compensate)(&undo, region, &mut part).await;
            let left_something = !part.not_restorable.is_empty();
            report.restored.append(&mut part.restored);
            report.not_restorable.append(&mut part.not_restorable);
            match result {
                // Done when nothing is left: what could not be restored is tried again by a later
                // rollback, since what stopped it may have changed (an organization's auto-enable).
                Ok(()) if !left_something => {
                    ledger.done.insert(item);
                    write_ledger(aws, run.run_id.as_str(), &ledger).await?;
                }
                Ok(()) => {}
                Err(error) => report.failed.push(Failed { item, error }),
            }
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
        let parts = discover::snapshot(&target.in_region(region), run).await?;
        regions.insert(region.to_string(), Value::Object(discover::keyed(parts)));
    }
    let orgs = aws.organization(&run.org.management, &run.home_region).organizations();
    let scps = controls::scps::attached_scps(&orgs, &run.account).await?;
    Ok(json!({"regions": regions, "scps": scps}))
}

//! Discover: what security setup the account already has in this region. Read-only. (Preflight
//! checked that the role acts as the account; the role is global, and its first call here shows
//! that it works in this region, an opt-in region the account has not enabled included.) Its snapshot is the "before" of the region, one part per control that reads one
//! (`Control::snapshot`): what the later steps take over and what a rollback restores.

use assure_contract::{Region, RunInput, StepError, StepName, StepOutput};
use futures::future::try_join_all;
use serde_json::{Map, Value};

use crate::aws::{AccountConfig, Aws};
use crate::controls::{self, Control, Snapshot};

pub async fn run(aws: &Aws, run: &RunInput, region: &Region) -> Result<StepOutput, StepError> {
    let target = aws.account(&run.account, region).await?;
    let parts = snapshot(&target, run).await?;
    let summary: Vec<String> = parts
        .iter()
        .map(|(control, part)| control.snapshot.as_ref().map_or_else(String::new, |s| (s.summarize)(part)))
        .collect();
    let mut snapshot = keyed(parts);
    snapshot.insert("region".to_owned(), Value::String(region.to_string()));
    Ok(StepOutput {
        step: StepName::Discover,
        region: region.clone(),
        summary: format!("{region}: {}", summary.join(", ")),
        changes: vec![],
        evidence: vec![],
        snapshot: Value::Object(snapshot),
    })
}

/// Every control's part of the region's existing setup, read in parallel, in [`controls::baseline::ALL`]'s order.
pub async fn snapshot(acct: &AccountConfig, run: &RunInput) -> Result<Vec<(&'static Control, Value)>, StepError> {
    let readers: Vec<(&'static Control, &'static Snapshot)> =
        controls::baseline::ALL.iter().filter_map(|c| c.snapshot.as_ref().map(|s| (*c, s))).collect();
    let parts = try_join_all(readers.iter().map(|(_, s)| (s.read)(acct, run))).await?;
    Ok(readers.into_iter().map(|(c, _)| c).zip(parts).collect())
}

/// The parts as one object, each under its control's snapshot key.
pub fn keyed(parts: Vec<(&'static Control, Value)>) -> Map<String, Value> {
    parts.into_iter().map(|(c, part)| (c.snapshot_key().unwrap_or_default().to_owned(), part)).collect()
}

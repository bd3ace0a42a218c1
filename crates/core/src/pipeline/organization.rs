//! The organization step: every control's organization-wide part ([`Control::organize`]), done once
//! for a bulk run before its accounts' runs begin. The accounts' runs then carry its facts in
//! `run.organization` and do only their own part, so a thousand accounts do not repeat the
//! organization's work, nor its calls to Organizations, the API that throttles first.
//!
//! Controls go in the baseline's order (the logging key exists before the detectors and streams
//! that encrypt with it); a regional control works in every region of the run at once.

use assure_contract::{Region, RunInput, StepError, StepName, StepOutput};
use futures::future::try_join_all;
use serde_json::{Map, Value};

use crate::aws::Aws;
use crate::controls;

pub async fn run(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    let mut changes = Vec::new();
    let mut facts = Map::new();
    for control in controls::baseline::ALL {
        let regions: Vec<&Region> =
            if control.regional() { run.regions.iter().collect() } else { vec![&run.home_region] };
        let done = try_join_all(regions.into_iter().map(|r| control.organize(aws, run, r))).await?;
        for part in done {
            changes.extend(part.changes);
            if !part.facts.is_null() {
                facts.insert(control.name().to_owned(), part.facts);
            }
        }
    }
    let summary = format!(
        "the organization's part of the baseline, in {} region(s): {}",
        run.regions.len(),
        if changes.is_empty() { "already in place".to_owned() } else { format!("{} change(s)", changes.len()) }
    );
    Ok(StepOutput {
        step: StepName::Organization,
        region: run.home_region.clone(),
        summary,
        changes,
        evidence: vec![],
        snapshot: Value::Object(facts),
    })
}

//! The organization step: every control's organization-wide part ([`crate::controls::Ahead::organize`]), done once
//! for a bulk run before its accounts' runs begin. The accounts' runs then carry its facts in
//! `run.organization` and do only their own part, so a thousand accounts do not repeat the
//! organization's work, nor its calls to Organizations, the API that throttles first.
//!
//! The logging bucket's part goes first (its key encrypts the detectors' and streams' findings),
//! then every other control's at once: they do not depend on one another, and two of them wait for
//! a new role to propagate. A regional control works in every region of the run at once.

use assure_contract::{Region, RunInput, StepError, StepName, StepOutput};
use futures::future::try_join_all;
use serde_json::{Map, Value};

use crate::aws::Aws;
use crate::controls;

pub async fn run(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    let mut changes = Vec::new();
    let mut facts = Map::new();
    let organize = |control: &'static controls::Control| async move {
        let regions: Vec<&Region> =
            if control.regional() { run.regions.iter().collect() } else { vec![&run.home_region] };
        let done = try_join_all(regions.into_iter().map(|r| (control.ahead.organize)(aws, run, r))).await?;
        Ok::<_, StepError>((control, done))
    };
    let (first, rest) = controls::baseline::ALL.split_first().expect("the baseline has controls");
    debug_assert_eq!(first.name, "logging-bucket", "the logging key is made first");
    let mut done = vec![organize(first).await?];
    done.extend(try_join_all(rest.iter().map(|c| organize(c))).await?);
    // In the baseline's order, whatever order they finished in.
    for (control, parts) in done {
        for part in parts {
            changes.extend(part.changes);
            if !part.facts.is_null() {
                facts.insert(control.name.to_owned(), part.facts);
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

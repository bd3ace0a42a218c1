//! Verify: every control in place, checked read-only, with the evidence recorded. It only gathers
//! the controls' evidence (`Control::evidence`): the account-wide controls once, the regional ones
//! in every region, all in parallel.

use assure_contract::{ErrorName, Evidence, Region, RunInput, StepError, StepName, StepOutput};
use futures::future::try_join_all;

use crate::aws::Aws;
use crate::controls::{self, Control};

/// The evidence for every control assure puts in place: the account-wide controls first, then each
/// region's, in [`controls::baseline::ALL`]'s order.
pub async fn check(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    let home = [run.home_region.clone()];
    let (global, regional): (Vec<&dyn Control>, Vec<&dyn Control>) =
        controls::baseline::ALL.iter().copied().partition(|c| !c.regional());
    let mut checks: Vec<(&dyn Control, &Region)> = global.iter().map(|c| (*c, &home[0])).collect();
    for region in &run.regions {
        checks.extend(regional.iter().map(|c| (*c, region)));
    }
    let found = try_join_all(checks.into_iter().map(|(c, region)| c.evidence(aws, run, region))).await?;
    Ok(found.concat())
}

/// The failed controls, one line each, naming the control and the region.
pub fn failures(evidence: &[Evidence]) -> Vec<String> {
    evidence
        .iter()
        .filter(|e| !e.passed)
        .map(|e| format!("{} in {} ({}: {})", e.control, e.region, e.resource, e.detail))
        .collect()
}

/// The verify step: fails with `Assure.NotCompliant`, naming each failed control and region, when a
/// control does not hold.
pub async fn run(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    let evidence = check(aws, run).await?;
    let failed = failures(&evidence);
    if !failed.is_empty() {
        return Err(StepError::new(ErrorName::NotCompliant, format!("controls not in place: {}", failed.join("; "))));
    }
    Ok(StepOutput {
        step: StepName::Verify,
        region: run.home_region.clone(),
        summary: format!("{} control check(s) passed", evidence.len()),
        changes: vec![],
        evidence,
        snapshot: serde_json::Value::Null,
    })
}

//! Verify: every control in place, checked read-only, with the evidence recorded.

use assure_contract::{ErrorName, Evidence, Region, RunInput, StepError, StepName, StepOutput};
use futures::future::try_join_all;

use crate::aws::Aws;
use crate::steps::{access_analyzer, alarms, cloudtrail, config, guardduty, logging_bucket, scps, session_manager};

async fn regional(aws: &Aws, run: &RunInput, region: &Region) -> Result<Vec<Evidence>, StepError> {
    let (g, c, a, s) = tokio::try_join!(
        guardduty::evidence_for(aws, run, region),
        config::evidence_for(aws, run, region),
        access_analyzer::evidence_for(aws, run, region),
        session_manager::evidence_for(aws, run, region),
    )?;
    Ok([g, c, a, s].concat())
}

/// The evidence for every control assure puts in place, every region in parallel.
pub async fn check(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    let (l, t, al, sc, per_region) = tokio::try_join!(
        logging_bucket::evidence(aws, run),
        cloudtrail::evidence_for(aws, run),
        alarms::evidence_for(aws, run),
        scps::evidence_for(aws, run),
        try_join_all(run.regions.iter().map(|r| regional(aws, run, r))),
    )?;
    Ok([l, t, al, sc, per_region.concat()].concat())
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

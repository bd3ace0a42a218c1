//! Verify: every control in place, checked read-only, with the evidence recorded.

use assure_contract::{ErrorName, Evidence, RunInput, StepError, StepName, StepOutput};

use crate::aws::Aws;
use crate::steps::logging_bucket;

/// The evidence for every control assure puts in place.
pub async fn check(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    logging_bucket::evidence(aws, run).await
}

/// The verify step: fails with `Assure.NotCompliant`, naming each failed control and region, when a
/// control does not hold.
pub async fn run(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    let evidence = check(aws, run).await?;
    let failed: Vec<String> = evidence
        .iter()
        .filter(|e| !e.passed)
        .map(|e| {
            format!(
                "{} in {} ({}: {})",
                e.control, e.region, e.resource, e.detail
            )
        })
        .collect();
    if !failed.is_empty() {
        return Err(StepError::new(
            ErrorName::NotCompliant,
            format!("controls not in place: {}", failed.join("; ")),
        ));
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

//! Verify: every control in place, checked read-only, with the evidence recorded. It only gathers
//! the controls' evidence (`Control::evidence`): the account-wide controls once, the regional ones
//! in every region, all in parallel.

use assure_contract::{ErrorName, Evidence, Region, RunInput, StepError, StepName, StepOutput};
use futures::future::try_join_all;

use crate::aws::Aws;
use crate::controls::{self, Control};
use crate::pipeline::checkpoint::{input_digest, now, Expect, Store};

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
    let (found, roles) = futures::try_join!(
        try_join_all(checks.into_iter().map(|(c, region)| c.evidence(aws, run, region))),
        crate::pipeline::roles::evidence_for(aws, run),
    )?;
    let mut out = roles;
    out.extend(found.concat());
    Ok(out)
}

/// The step's one line: the controls that hold and, when proven, the deliveries.
fn summary(evidence: &[Evidence]) -> String {
    let proven = evidence.iter().filter(|e| e.control.starts_with("deliveries.")).count();
    let checks = evidence.len() - proven;
    if proven == 0 {
        format!("{checks} control check(s) passed")
    } else {
        format!("{checks} control check(s) passed, {proven} delivery path(s) proven")
    }
}

/// The failed controls, one line each, naming the control and the region.
pub fn failures(evidence: &[Evidence]) -> Vec<String> {
    evidence
        .iter()
        .filter(|e| !e.passed)
        .map(|e| format!("{} in {} ({}: {})", e.control, e.region, e.resource, e.detail))
        .collect()
}

/// Whether every control that does not hold waits only for AWS to finish making a resource
/// (see `Evidence::pending`).
pub fn only_pending(evidence: &[Evidence]) -> bool {
    evidence.iter().filter(|e| !e.passed).all(|e| e.pending)
}

/// Where the pipeline notes that an account's baseline held at the end of a run: the next run of
/// the account with the same settings checks first and changes nothing if it still holds.
pub fn onboarded_key(account: &assure_contract::AccountId) -> String {
    format!("onboarded/{account}.json")
}

/// What the note holds: the run and the digest of the settings it verified.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Onboarded {
    pub run_id: String,
    pub settings: String,
    pub at: String,
}

/// The digest of what a run's baseline depends on (the account, regions, organization, role,
/// notifications), the same as the verify step's checkpoint digest.
pub fn settings_digest(run: &RunInput) -> String {
    input_digest(run, StepName::Verify, &run.home_region)
}

async fn record_onboarded(aws: &Aws, run: &RunInput) -> Result<(), StepError> {
    let note = Onboarded { run_id: run.run_id.to_string(), settings: settings_digest(run), at: now() };
    Store::new(aws).put_json(&onboarded_key(&run.account), &note, Expect::Any).await.map(|_| ())
}

/// Whether the account's baseline held at the end of an earlier run with the same settings. Only a
/// hint for the state machine to check before acting: the check itself is verify's, in full.
pub async fn onboarded_before(aws: &Aws, run: &RunInput) -> Result<bool, StepError> {
    let found: Option<(Onboarded, String)> = Store::new(aws).get_json(&onboarded_key(&run.account)).await?;
    Ok(found.is_some_and(|(note, _)| note.settings == settings_digest(run)))
}

/// The verify step: fails with `Assure.NotCompliant`, naming each failed control and region, when a
/// control does not hold.
pub async fn run(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    // Proof that the controls work: a canary down every delivery path (`deliveries`), waited for
    // like a transitional state.
    // It goes once every control is in place (a canary sent while a stream is still being made
    // would be lost on the way), or once only a service's report of an earlier delivery is
    // against it (which the canary's delivery refreshes).
    let mut evidence = check(aws, run).await?;
    if run.deliveries && crate::pipeline::deliveries::ready(&evidence) {
        let proofs = crate::pipeline::deliveries::prove(aws, run).await?;
        crate::pipeline::deliveries::await_fresh_status(&mut evidence, &proofs);
        evidence.extend(proofs);
    }
    let failed = failures(&evidence);
    // Resources AWS is still making (an analyzer or stream CREATING, a publishing destination
    // PENDING_VERIFICATION) are waited for in the state machine, not in the function: the Verify
    // state retries Assure.Retryable with backoff, bounded (statemachines/onboarding.asl.json),
    // and no Lambda sits idle meanwhile. Past the bound the run fails Retryable, naming them.
    if !failed.is_empty() && only_pending(&evidence) {
        return Err(StepError::new(
            ErrorName::Retryable,
            format!("controls on their way (AWS is still making them): {}", failed.join("; ")),
        ));
    }
    if !failed.is_empty() {
        if run.deliveries {
            // The run fails here: no canary is waited for any longer, so none is left behind.
            crate::pipeline::deliveries::abandon(aws, run).await?;
        }
        return Err(StepError::new(ErrorName::NotCompliant, format!("controls not in place: {}", failed.join("; "))));
    }
    record_onboarded(aws, run).await?;
    Ok(StepOutput {
        step: StepName::Verify,
        region: run.home_region.clone(),
        summary: summary(&evidence),
        changes: vec![],
        evidence,
        snapshot: serde_json::Value::Null,
    })
}

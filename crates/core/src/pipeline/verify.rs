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
    let (roles, checked) = check_each(aws, run).await?;
    Ok(flatten(roles, checked))
}

/// One control's evidence in one region (the home region for an account-wide control).
struct Checked {
    control: &'static Control,
    region: Region,
    evidence: Vec<Evidence>,
}

/// [`check`], each control's evidence kept with the control and region it came from, and the
/// roles' evidence apart.
async fn check_each(aws: &Aws, run: &RunInput) -> Result<(Vec<Evidence>, Vec<Checked>), StepError> {
    let (global, regional): (Vec<&'static Control>, Vec<&'static Control>) =
        controls::baseline::ALL.iter().copied().partition(|c| !c.regional());
    let mut checks: Vec<(&'static Control, Region)> = global.iter().map(|c| (*c, run.home_region.clone())).collect();
    for region in &run.regions {
        checks.extend(regional.iter().map(|c| (*c, region.clone())));
    }
    let (found, roles) = futures::try_join!(
        try_join_all(checks.iter().map(|(c, region)| (c.evidence)(aws, run, region))),
        crate::pipeline::roles::evidence_for(aws, run),
    )?;
    let checked = checks
        .into_iter()
        .zip(found)
        .map(|((control, region), evidence)| Checked { control, region, evidence })
        .collect();
    Ok((roles, checked))
}

fn flatten(roles: Vec<Evidence>, checked: Vec<Checked>) -> Vec<Evidence> {
    let mut out = roles;
    out.extend(checked.into_iter().flat_map(|c| c.evidence));
    out
}

/// How long verify looks again, inside the function, at controls that wait only for AWS to finish
/// making a resource, before it leaves the wait to the state machine's retries (which read every
/// control in every region again, after at least 5 s). Most of AWS's transitions last seconds.
const PENDING_WAIT: std::time::Duration = std::time::Duration::from_secs(8);

/// While every control that does not hold is pending, and for at most [`PENDING_WAIT`]: waits, then
/// reads again only the controls (in their regions) whose evidence is pending.
async fn settle_pending(
    aws: &Aws,
    run: &RunInput,
    roles: &[Evidence],
    checked: &mut [Checked],
) -> Result<(), StepError> {
    let deadline = std::time::Instant::now() + PENDING_WAIT;
    let mut pause = std::time::Duration::from_secs(1);
    loop {
        let failed: Vec<&Evidence> =
            roles.iter().chain(checked.iter().flat_map(|c| c.evidence.iter())).filter(|e| !e.passed).collect();
        if failed.is_empty() || !failed.iter().all(|e| e.pending) || std::time::Instant::now() + pause > deadline {
            return Ok(());
        }
        crate::aws::wait_for_aws(pause).await;
        pause = pause * 3 / 2;
        let again =
            try_join_all(
                checked.iter().enumerate().filter(|(_, c)| c.evidence.iter().any(|e| e.pending)).map(
                    |(i, c)| async move { (c.control.evidence)(aws, run, &c.region).await.map(|found| (i, found)) },
                ),
            )
            .await?;
        for (i, found) in again {
            checked[i].evidence = found;
        }
    }
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

/// What the note holds: the run and the digest of the settings it verified, the baseline version
/// it applied and the run itself (so a scheduled verify checks the account as that run left it).
/// The notes are the fleet: every account assure keeps on its baseline (`core::pipeline::fleet`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Onboarded {
    pub run_id: String,
    pub settings: String,
    pub at: String,
    /// Absent in notes written before baselines had versions: such an account is behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<assure_contract::BaselineVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunInput>,
}

/// The digest of what a run's baseline depends on (the account, regions, organization, role,
/// notifications), the same as the verify step's checkpoint digest.
pub fn settings_digest(run: &RunInput) -> String {
    input_digest(run, StepName::Verify, &run.home_region)
}

async fn record_onboarded(aws: &Aws, run: &RunInput) -> Result<(), StepError> {
    let note = Onboarded {
        run_id: run.run_id.to_string(),
        settings: settings_digest(run),
        at: now(),
        baseline: Some(controls::baseline::version(run)),
        run: Some(RunInput { organization: None, ..run.clone() }),
    };
    Store::new(aws).put_json(&onboarded_key(&run.account), &note, Expect::Any).await.map(|_| ())
}

/// Whether the account's baseline held at the end of an earlier run with the same settings and
/// the same baseline version. Only a hint for the state machine to check before acting: the check
/// itself is verify's, in full.
pub async fn onboarded_before(aws: &Aws, run: &RunInput) -> Result<bool, StepError> {
    let found: Option<(Onboarded, String)> = Store::new(aws).get_json(&onboarded_key(&run.account)).await?;
    Ok(found.is_some_and(|(note, _)| current(&note, run)))
}

/// Whether `note` was written by a run of this baseline version with `run`'s settings.
pub fn current(note: &Onboarded, run: &RunInput) -> bool {
    note.settings == settings_digest(run) && note.baseline.as_ref() == Some(&controls::baseline::version(run))
}

/// The verify step: fails with `Assure.NotCompliant`, naming each failed control and region, when a
/// control does not hold.
pub async fn run(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    // Proof that the controls work: a canary down every delivery path (`deliveries`), waited for
    // like a transitional state.
    // It goes once every control is in place (a canary sent while a stream is still being made
    // would be lost on the way), or once only a service's report of an earlier delivery is
    // against it (which the canary's delivery refreshes).
    let (roles, mut checked) = check_each(aws, run).await?;
    settle_pending(aws, run, &roles, &mut checked).await?;
    let mut evidence = flatten(roles, checked);
    if run.deliveries && crate::pipeline::deliveries::ready(&evidence) {
        let proofs = crate::pipeline::deliveries::prove(aws, run).await?;
        crate::pipeline::deliveries::await_fresh_status(&mut evidence, &proofs);
        evidence.extend(proofs);
    }
    let failed = failures(&evidence);
    // Resources AWS is still making (an analyzer or stream CREATING, a publishing destination
    // PENDING_VERIFICATION) are looked at again in the function for a few seconds
    // (settle_pending), then waited for in the state machine: the Verify state retries
    // Assure.Retryable with backoff, bounded (statemachines/onboarding.asl.json), and no Lambda
    // sits idle meanwhile. Past the bound the run fails Retryable, naming them.
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

//! The baseline: one folder per control, each declaring itself as one [`Control`], a value.
//!
//! A control knows these things about its part of the account, and nothing about how a run is
//! orchestrated:
//! - what it reads: its part of a region's before-snapshot ([`Control::snapshot`]);
//! - what its calls need granted, from which the templates' roles are generated
//!   ([`Control::permissions`]);
//! - what it refuses early: conflicts knowable before any change ([`Ahead::preflight`]);
//! - what it makes ahead: the roles its steps hand to services ([`Ahead::service_roles`]);
//! - what it shares with the organization's other accounts, done once per bulk run
//!   ([`Ahead::organize`]);
//! - plan/apply: its steps, which read first and change only what differs ([`Control::apply`]);
//! - verify: the evidence that it holds, read-only ([`Control::evidence`]);
//! - compensate: restoring its part of the before-snapshot ([`Control::compensate`]).
//!
//! The pipeline drives them through [`baseline::ALL`]: `preflight` asks each what it refuses,
//! `discover` asks each for its snapshot, `verify` gathers their evidence, `rollback` runs their
//! compensations in reverse order; `pipeline::infra` takes the union of their permissions.
//! ARCHITECTURE.md lists what adding a control touches.
//!
//! Layer rule: a control imports this module, [`kit`], [`names`], `crate::aws` and the contract;
//! never another control and never the pipeline. Only [`baseline`] names the controls (checked by
//! the `layers` test).

pub mod access_analyzer;
pub mod alarms;
pub mod baseline;
pub mod cloudtrail;
pub mod config;
pub mod guardduty;
pub mod kit;
pub mod logging_bucket;
pub mod names;
pub mod scps;
pub mod session_manager;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use assure_contract::catalogue::Entry;
use assure_contract::{Evidence, Region, RunInput, StepError, StepName, StepOutput};
use serde::Serialize;
use serde_json::Value;

use crate::aws::{AccountConfig, Aws};

/// What a control's calls answer.
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, StepError>> + Send + 'a>>;

/// One control of the baseline, declared as data: each control's module has one
/// `pub const CONTROL: Control`, which [`baseline::ALL`] lists. The fields say what it is (its
/// name, steps, snapshot, permissions) and what it does (its functions, which the pipeline calls).
pub struct Control {
    /// Its name: the prefix of its rollback report lines.
    pub name: &'static str,
    /// The steps that put it in place, in the state machine's order. Regional when any is.
    pub steps: &'static [StepName],
    /// What it puts in place and verify reports evidence for, in the catalogue's terms.
    pub catalogue: &'static [Entry],
    /// What it reads of a region before any step changes anything, if it reads anything.
    pub snapshot: Option<Snapshot>,
    /// What its calls need granted, from which the templates' policies are generated.
    pub permissions: Permissions,
    /// What it does ahead of its steps: refuse early, make service roles, organize.
    pub ahead: Ahead,
    /// Plan/apply: runs `call.step`, one of its steps, in `call.region` (the home region for a
    /// control that is not regional). In plan mode it records what it would change.
    pub apply: for<'a> fn(StepCall<'a>) -> Fut<'a, StepOutput>,
    /// Verify: the evidence that it holds in a region (the home region for a control that is not
    /// regional), read-only.
    pub evidence: for<'a> fn(&'a Aws, &'a RunInput, &'a Region) -> Fut<'a, Vec<Evidence>>,
    /// Compensate: restores its part of the before-snapshot in a region, reporting what it
    /// restored and what it cannot. Called only when one of its steps ran.
    pub compensate: for<'a> fn(&'a Undo<'a>, &'a Region, &'a mut Report) -> Fut<'a, ()>,
}

impl Control {
    /// Whether it acts in every region of the run (else once, in the home region).
    pub fn regional(&self) -> bool {
        self.steps.iter().any(|s| s.regional())
    }

    /// The key of its part in a region's before-snapshot, if it reads one.
    pub fn snapshot_key(&self) -> Option<&'static str> {
        self.snapshot.as_ref().map(|s| s.key)
    }
}

/// What a control reads of a region before any step changes anything: the account's existing
/// setup for the control, which its compensation restores.
pub struct Snapshot {
    /// The key of its part in discover's snapshot of a region.
    pub key: &'static str,
    /// Reads the part in the account config's region, one of the run's (JSON null when there is
    /// none). Read-only.
    pub read: for<'a> fn(&'a AccountConfig, &'a RunInput) -> Fut<'a, Value>,
    /// One clause of discover's summary about the part.
    pub summarize: fn(&Value) -> String,
}

/// What a control does before and beyond its steps in the onboarded account. Each part does
/// nothing unless the control declares it (`..Ahead::NOTHING`).
pub struct Ahead {
    /// Refuse early: what would fail one of its steps for a reason knowable now (a conflicting
    /// delegated administrator, say), checked read-only before any step changes anything.
    pub preflight: for<'a> fn(&'a Aws, &'a RunInput) -> Fut<'a, ()>,
    /// The IAM roles its steps hand to AWS services, with their trust and permissions. IAM is
    /// eventually consistent: a service refuses a role made a moment ago, for seconds
    /// (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
    /// The pipeline's `service-roles` step makes every control's ahead, beside the logging bucket,
    /// so IAM propagates them while the run does other work; the control's step still ensures
    /// each ([`kit::service_role`]), reading nothing when the run's service-roles step did.
    /// Only what is knowable before any step runs: a permission on the logging key, made by the
    /// logging-bucket step at the same time, is the control step's to add.
    pub service_roles: fn(&RunInput) -> Vec<kit::ServiceRole>,
    /// The organization-wide part in a region (the home region for a control that is not
    /// regional): what every account of the organization shares, such as trusted access, delegated
    /// administrators, the security account's detectors and analyzers, the policies themselves. A
    /// bulk run's `organization` step runs it once for all its accounts, whose runs then carry
    /// `run.organization` and skip it; a run of its own has the control's step do it. Answers the
    /// changes made and the facts the accounts' steps need (JSON null when none).
    pub organize: for<'a> fn(&'a Aws, &'a RunInput, &'a Region) -> Fut<'a, Organized>,
}

impl Ahead {
    /// No preflight, no service roles, no organization-wide part.
    pub const NOTHING: Ahead = Ahead {
        preflight: |_, _| Box::pin(async { Ok(()) }),
        service_roles: |_| Vec::new(),
        organize: |_, _, _| Box::pin(async { Ok(Organized::default()) }),
    };
}

/// What a control's calls need granted, where they run. `cargo xtask codegen` generates the
/// templates' policies from the union over [`baseline::ALL`] and the pipeline's own needs, so a
/// control's permissions live beside the calls that need them.
pub struct Permissions {
    /// Statements of the member role every onboarded account holds. Statements of one Sid from
    /// several controls are one statement: they must name the same resources and conditions, and
    /// their actions are joined.
    pub member: fn() -> Vec<Value>,
    /// What the pipeline account's role of a step (`preflight`, one of the control's steps,
    /// `organization`, `verify`, `rollback`) does for the control itself, as `(resource, actions)`.
    pub pipeline: fn(StepName) -> Vec<kit::permissions::Grant>,
    /// What the management account's role does for the control when that step's role assumes it:
    /// the calls only the management account may make.
    pub management: fn(StepName) -> Vec<kit::permissions::Grant>,
}

impl Permissions {
    /// Only the member role's statements.
    pub const fn member(member: fn() -> Vec<Value>) -> Permissions {
        Permissions { member, pipeline: |_| Vec::new(), management: |_| Vec::new() }
    }
}

/// One step of a control to run: the connection, the run, the step and its region, and what the
/// run's discover read there when the step may start from it ([`Known`]).
pub struct StepCall<'a> {
    pub aws: &'a Aws,
    pub run: &'a RunInput,
    pub step: StepName,
    pub region: &'a Region,
    pub known: Known<'a>,
}

/// Discover's snapshot of a region (every control's part), handed to the first attempt of a step
/// in that region: the account as the run found it, which no earlier step of the run changes in
/// the parts a step takes from it. The step starts from its part instead of reading it again. A
/// retried attempt (an earlier one may have changed something), the check of a completed step and
/// a plan get nothing and read; and if a step that started from it fails, the pipeline runs it
/// once more reading everything, in case the account changed since discover.
#[derive(Clone, Copy, Debug, Default)]
pub struct Known<'a>(pub Option<&'a Value>);

impl<'a> Known<'a> {
    /// The control's part under `key`; None when nothing is known (a part discover did not record
    /// included).
    pub fn part(self, key: &str) -> Option<&'a Value> {
        self.0.and_then(|s| s.get(key))
    }

    /// The control's part under `key` if known, else what `read` (the control's
    /// [`Control::snapshot`] of the region, not run unless needed) reads.
    pub async fn part_or<F>(self, key: &str, read: F) -> Result<Value, StepError>
    where
        F: Future<Output = Result<Value, StepError>>,
    {
        match self.part(key) {
            Some(part) => Ok(part.clone()),
            None => read.await,
        }
    }
}

/// What a control's organization-wide part did, and the facts it hands to the accounts' steps.
#[derive(Debug, Default)]
pub struct Organized {
    pub changes: Vec<assure_contract::Change>,
    pub facts: Value,
}

impl Organized {
    /// A part whose facts are the control's own type `T`, written as the accounts' runs read it
    /// back ([`organized_facts`]).
    pub fn with<T: Serialize>(changes: Vec<assure_contract::Change>, facts: &T) -> Result<Organized, StepError> {
        let facts = serde_json::to_value(facts).map_err(|e| StepError::internal(e.to_string()))?;
        Ok(Organized { changes, facts })
    }
}

/// A recorded snapshot part (or a step's snapshot) read as the control's own type: `None` where
/// nothing was recorded (null), an error naming `what` where the record is not of that type.
pub fn recorded<T: serde::de::DeserializeOwned>(part: &Value, what: &str) -> Result<Option<T>, StepError> {
    if part.is_null() {
        return Ok(None);
    }
    serde_json::from_value(part.clone()).map(Some).map_err(|e| StepError::internal(format!("{what}: {e}")))
}

/// The facts a bulk run's organization step recorded for `control` (`run.organization`, keyed by
/// the control's name), as the control's own type; `None` for a run of its own, or facts that are
/// not of that type.
pub fn organized_facts<T: serde::de::DeserializeOwned>(run: &RunInput, control: &str) -> Option<T> {
    serde_json::from_value(run.organization.as_ref()?.get(control)?.clone()).ok()
}

/// What a rollback did and could not do.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub restored: Vec<String>,
    pub not_restorable: Vec<String>,
    /// Compensations that failed, each with its error; a later rollback of the run retries them.
    pub failed: Vec<Failed>,
    /// Compensations an earlier rollback of the run finished, not run again.
    pub already_done: Vec<String>,
}

/// One compensation that failed: the control and region (`guardduty us-east-1`) and why.
#[derive(Debug, Serialize)]
pub struct Failed {
    pub item: String,
    pub error: StepError,
}

/// What a compensation knows of the run it undoes: which steps ran and what they recorded. Built
/// by the pipeline from the run's checkpoints; a control never reads checkpoints itself.
pub struct Undo<'a> {
    pub aws: &'a Aws,
    pub run: &'a RunInput,
    ran: BTreeSet<StepName>,
    snapshots: BTreeMap<(StepName, Region), Value>,
    changes: Vec<assure_contract::Change>,
    unrecorded: BTreeSet<StepName>,
}

impl<'a> Undo<'a> {
    pub fn new(aws: &'a Aws, run: &'a RunInput) -> Undo<'a> {
        Undo {
            aws,
            run,
            ran: BTreeSet::new(),
            snapshots: BTreeMap::new(),
            changes: Vec::new(),
            unrecorded: BTreeSet::new(),
        }
    }

    /// Records that `step` ran in `region` (completed or failed: a failed step may have changed
    /// something), with the snapshot of its output if it completed.
    pub fn record(&mut self, step: StepName, region: &Region, completed_snapshot: Option<Value>) {
        self.ran.insert(step);
        if let Some(s) = completed_snapshot {
            self.snapshots.insert((step, region.clone()), s);
        }
    }

    /// The changes a completed `step` made, in the order it made them; a step that ran and did not
    /// complete (its changes unknown) is recorded with [`Undo::record_unknown`].
    pub fn record_changes(&mut self, changes: Vec<assure_contract::Change>) {
        self.changes.extend(changes);
    }

    /// Records that `step` ran somewhere without completing: what it changed is not known.
    pub fn record_unknown(&mut self, step: StepName) {
        self.unrecorded.insert(step);
    }

    /// Whether `step` ran somewhere and did not complete, so its changes are not known.
    pub fn unknown(&self, step: StepName) -> bool {
        self.unrecorded.contains(&step)
    }

    /// The recorded changes to `account` whose resource is `resource` or under it (`resource/…`),
    /// in the order they were made.
    pub fn changes_to(&self, account: &assure_contract::AccountId, resource: &str) -> Vec<&assure_contract::Change> {
        let under = format!("{resource}/");
        self.changes
            .iter()
            .filter(|c| &c.account == account && (c.resource == resource || c.resource.starts_with(&under)))
            .collect()
    }

    /// Whether `step` ran in some region.
    pub fn ran(&self, step: StepName) -> bool {
        self.ran.contains(&step)
    }

    /// The snapshot a completed `step` recorded in `region`.
    pub fn snapshot(&self, step: StepName, region: &Region) -> Option<&Value> {
        self.snapshots.get(&(step, region.clone()))
    }

    /// A control's part of `region`'s before-snapshot (discover's), or null.
    pub fn before(&self, region: &Region, key: &str) -> Value {
        self.snapshot(StepName::Discover, region).map(|s| s[key].clone()).unwrap_or(Value::Null)
    }

    /// The onboarded account in `region`.
    pub async fn target(&self, region: &Region) -> Result<AccountConfig, StepError> {
        self.aws.account(&self.run.account, region).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_controls_organized_facts_read_back_as_its_type_and_only_as_it() {
        #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
        struct Facts {
            policies: BTreeMap<String, String>,
        }
        let facts = Facts { policies: [("assure-baseline".to_owned(), "p-1".to_owned())].into() };
        let part = Organized::with(vec![], &facts).unwrap();
        let mut run: RunInput = serde_json::from_value(serde_json::json!({
            "runId": "onboard-111111111111-1", "account": "111111111111", "regions": ["us-east-1"],
            "homeRegion": "us-east-1", "roleName": "AssureExecutionRole",
            "org": {"management": "123456789012", "logging": "222222222222", "security": "333333333333"}
        }))
        .unwrap();
        assert_eq!(organized_facts::<Facts>(&run, "scps"), None, "a run of its own has none");
        run.organization = Some(serde_json::json!({"scps": part.facts, "logging-bucket": {"loggingKeyArn": "k"}}));
        assert_eq!(organized_facts::<Facts>(&run, "scps"), Some(facts));
        assert_eq!(organized_facts::<Facts>(&run, "logging-bucket"), None, "another control's facts are not these");
    }
}

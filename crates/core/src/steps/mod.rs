//! The steps. Each reads first and writes only what differs, so running it twice changes nothing
//! the second time; each returns a [`StepOutput`] with the changes it made and, where it changed
//! something, the configuration it found before.

pub mod access_analyzer;
pub mod alarms;
pub mod cloudtrail;
pub mod config;
pub mod discover;
pub mod guardduty;
pub mod logging_bucket;
pub mod preflight;
pub mod scps;
pub mod session_manager;
pub mod verify;

use assure_contract::{AccountId, Change, Evidence, Region, StepError, StepName, StepOutput, TaskMessage};
use serde_json::Value;

use crate::aws::{AccountConfig, Aws};

/// Names of the resources assure owns in member accounts. One place, so the steps, verify and the
/// SCPs that protect them cannot drift apart.
pub mod names {
    pub const TRAIL: &str = "assure-trail";
    pub const TRAIL_LOG_GROUP: &str = "assure/cloudtrail";
    pub const TRAIL_LOGS_ROLE: &str = "assure-cloudtrail-logs";
    pub const ALARM_TOPIC: &str = "assure-security-alarms";
    pub const ALARM_PREFIX: &str = "assure-";
    pub const METRIC_NAMESPACE: &str = "Assure/CISBenchmark";
    pub const ANALYZER: &str = "assure-organization";
    /// The EventBridge rule and Firehose stream carrying Access Analyzer findings to the logging bucket.
    pub const FINDINGS: &str = "assure-access-analyzer-findings";
    pub const FINDINGS_ROLE: &str = "assure-findings-delivery";
    pub const FINDINGS_EVENTS_ROLE: &str = "assure-findings-events";
    pub const AGGREGATOR: &str = "assure-organization";
    pub const AGGREGATOR_ROLE: &str = "assure-config-aggregator";
    pub const CONFIG_RECORDER: &str = "default";
    pub const CONFIG_CHANNEL: &str = "default";
    pub const SCP_PROTECT: &str = "assure-protect-baseline";
    pub const SCP_ROOT: &str = "assure-restrict-root";
    /// The service-managed StackSet of the member role (README, deployment step 1); its stacks in
    /// member accounts are named `StackSet-assure-member-role-…`.
    pub const MEMBER_STACK_SET: &str = "assure-member-role";
}

/// Runs the step a task asks for.
pub async fn dispatch(aws: &Aws, task: &TaskMessage) -> Result<StepOutput, StepError> {
    let run = &task.run;
    let region = &task.region;
    match task.step {
        StepName::Preflight => preflight::run(aws, run).await,
        StepName::Discover => discover::run(aws, run, region).await,
        StepName::LoggingBucket => logging_bucket::apply(aws, run).await,
        StepName::CloudTrail => cloudtrail::apply(aws, run).await,
        StepName::StopCloudTrail => cloudtrail::stop_others(aws, run).await,
        StepName::StopGuardDuty => guardduty::stop_foreign(aws, run, region).await,
        StepName::GuardDuty => guardduty::apply(aws, run, region).await,
        StepName::Config => config::apply(aws, run, region).await,
        StepName::AccessAnalyzer => access_analyzer::apply(aws, run, region).await,
        StepName::Alarms => alarms::apply(aws, run).await,
        StepName::SessionManager => session_manager::apply(aws, run, region).await,
        StepName::Scps => scps::apply(aws, run).await,
        StepName::Verify => verify::run(aws, run).await,
        StepName::Rollback => rollback_step(aws, run).await,
    }
}

/// The rollback step: the failure policy `rollback`, inside the state machine.
async fn rollback_step(aws: &Aws, run: &assure_contract::RunInput) -> Result<StepOutput, StepError> {
    let report = crate::rollback::run(aws, run).await?;
    Ok(StepOutput {
        step: StepName::Rollback,
        region: run.home_region.clone(),
        summary: format!("{} restored, {} not restorable", report.restored.len(), report.not_restorable.len()),
        changes: vec![],
        evidence: vec![],
        snapshot: serde_json::to_value(&report).unwrap_or(Value::Null),
    })
}

/// The changes a step makes, as it makes them.
pub(crate) struct Changes {
    account: AccountId,
    region: Region,
    plan: bool,
    pub(crate) list: Vec<Change>,
}

impl Changes {
    pub(crate) fn new(acct: &AccountConfig) -> Changes {
        Changes { account: acct.account.clone(), region: acct.region.clone(), plan: acct.plan, list: Vec::new() }
    }

    /// False in plan mode: the step records the change and does not make it.
    pub(crate) fn live(&self) -> bool {
        !self.plan
    }

    /// Records a change made in the account and region this recorder was made for.
    pub(crate) fn push(&mut self, resource: impl Into<String>, action: &str, before: Value, after: Value) {
        let (account, region) = (self.account.clone(), self.region.clone());
        self.push_in(account, region, resource, action, before, after);
    }

    /// Records a change made in another account or region.
    pub(crate) fn push_in(
        &mut self,
        account: AccountId,
        region: Region,
        resource: impl Into<String>,
        action: &str,
        before: Value,
        after: Value,
    ) {
        self.list.push(Change { account, region, resource: resource.into(), action: action.to_owned(), before, after });
    }

    /// The step's output: a one-line summary, the changes, the snapshot.
    pub(crate) fn output(self, step: StepName, region: &Region, what: &str, snapshot: Value) -> StepOutput {
        let n = self.list.len();
        StepOutput {
            step,
            region: region.clone(),
            summary: if n == 0 { format!("{what}: already in place") } else { format!("{what}: {n} change(s)") },
            changes: self.list,
            evidence: vec![],
            snapshot,
        }
    }
}

/// One piece of evidence about `acct`.
pub(crate) fn evidence(
    acct: &AccountConfig,
    control: &str,
    resource: impl Into<String>,
    passed: bool,
    detail: impl Into<String>,
) -> Evidence {
    debug_assert!(assure_contract::Control::find(control).is_some(), "unknown control {control}");
    Evidence {
        control: control.to_owned(),
        account: acct.account.clone(),
        region: acct.region.clone(),
        resource: resource.into(),
        passed,
        detail: detail.into(),
    }
}

/// Whether an AWS error code says "it is already there": concurrent regions of one run race to
/// create account-wide things (service-linked roles, delegated administrators), and the loser is fine.
pub(crate) fn already_exists(code: Option<&str>, message: &str) -> bool {
    matches!(
        code,
        Some(
            "EntityAlreadyExists"
                | "EntityAlreadyExistsException"
                | "AccountAlreadyRegisteredException"
                | "ResourceAlreadyExistsException"
                | "ConflictException"
                | "DuplicatePolicyAttachmentException"
        )
    ) || message.contains("already exists")
        || message.contains("has been taken in this account")
}

//! What every control uses: the change recorder (plan mode records, live mode also writes), one
//! piece of evidence, the "already exists" answers of parallel regions, the IAM roles a control
//! hands to a service, and customer managed keys (the logging key every control encrypts with,
//! the alarm topic's key).

use assure_contract::catalogue::Entry;
use assure_contract::{AccountId, Change, Evidence, Region, StepError, StepName, StepOutput};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, AwsResultExt};
use crate::controls::names::TRAIL_LOG_GROUP;

mod keys;
mod organizations;
pub mod permissions;
mod roles;

pub use keys::*;
pub use organizations::*;
pub use roles::*;

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
            summary: summary(what, n),
            changes: self.list,
            evidence: vec![],
            snapshot,
        }
    }
}

/// A step's one-line summary of `n` changes to `what`.
pub(crate) fn summary(what: &str, n: usize) -> String {
    if n == 0 {
        format!("{what}: already in place")
    } else {
        format!("{what}: {n} change(s)")
    }
}

/// One piece of evidence about `acct`.
pub(crate) fn evidence(
    acct: &AccountConfig,
    control: &Entry,
    resource: impl Into<String>,
    passed: bool,
    detail: impl Into<String>,
) -> Evidence {
    Evidence::new(control, acct.account.clone(), acct.region.clone(), resource, passed, detail)
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

/// The trail's log group as [`trail_log_group`] found or made it.
pub(crate) enum LogGroup {
    /// There already, with its retention in days.
    Found(Option<i32>),
    /// Made now.
    Made,
    /// Missing, in a plan: to be made.
    Planned,
}

/// The trail's log group, made if missing. The CloudTrail step and the alarms step (whose filters
/// are on it) run side by side and both call this: whichever comes first makes it and records the
/// change, the other takes `ResourceAlreadyExistsException` as found. A plan records nothing here.
pub(crate) async fn trail_log_group(target: &AccountConfig, changes: &mut Changes) -> Result<LogGroup, StepError> {
    let logs = target.logs();
    let groups =
        logs.describe_log_groups().log_group_name_prefix(TRAIL_LOG_GROUP).send().await.aws("logs:DescribeLogGroups")?;
    if let Some(g) = groups.log_groups().iter().find(|g| g.log_group_name() == Some(TRAIL_LOG_GROUP)) {
        return Ok(LogGroup::Found(g.retention_in_days()));
    }
    if !changes.live() {
        return Ok(LogGroup::Planned);
    }
    match logs.create_log_group().log_group_name(TRAIL_LOG_GROUP).send().await {
        Ok(_) => {
            changes.push(format!("logs:{TRAIL_LOG_GROUP}"), "create", Value::Null, json!({}));
            Ok(LogGroup::Made)
        }
        // The other step made it a moment ago (with no retention: that is this step's to set).
        Err(e) if error_code(&e) == Some("ResourceAlreadyExistsException") => Ok(LogGroup::Found(None)),
        Err(e) => Err(e).aws(format!("logs:CreateLogGroup {TRAIL_LOG_GROUP}")),
    }
}

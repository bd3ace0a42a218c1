//! What a run is made of: its input, the message a Task state puts on a step's queue, and what a step
//! answers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StepError;
use crate::ids::{AccountId, Region, RunId};
use crate::step::StepName;

/// The role assure assumes in every account it touches, unless the deployment names another.
pub const DEFAULT_ROLE_NAME: &str = "AssureExecutionRole";

/// The role of the management account's bootstrap stack (`infra/management.template.json`): the
/// one principal there that acts for assure, for the calls only the management account may make.
pub const MANAGEMENT_ROLE: &str = "assure-management";

/// The organization's fixed accounts. None of them may be onboarded as a target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgLayout {
    pub management: AccountId,
    pub logging: AccountId,
    pub security: AccountId,
}

impl OrgLayout {
    /// The logging and security accounts are two accounts: each is protected by its own part of
    /// the baseline, and the security account reads what the logging account stores.
    pub fn distinct_roles(logging: &AccountId, security: &AccountId) -> Result<(), StepError> {
        if logging == security {
            return Err(StepError::invalid_input(format!(
                "{security} is also the logging account; the security account (GuardDuty's and Access Analyzer's administrator) and the logging account (which keeps the logs) must be two accounts"
            )));
        }
        Ok(())
    }

    /// Which fixed role `account` plays, if any.
    pub fn role_of(&self, account: &AccountId) -> Option<&'static str> {
        if *account == self.management {
            Some("management")
        } else if *account == self.logging {
            Some("logging")
        } else if *account == self.security {
            Some("security")
        } else {
            None
        }
    }
}

/// What a run does when a step fails for good.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Stop, keep what was done and the checkpoints, ready for a retry.
    #[default]
    Hold,
    /// Compensate the completed steps in reverse order, then fail.
    Rollback,
}

/// What onboarding does with the account's own trails once the assure trail logs. A stopped trail
/// still fails CIS scanners (Prowler, Security Hub's CIS standard check every trail the account
/// has: log file validation, encryption, CloudWatch Logs delivery), so the default retires them.
/// Either way their logs are never touched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExistingTrails {
    /// Delete each trail's configuration after recording all of it (the trail, its event and
    /// insight selectors, tags, whether it was logging) in the snapshot; rollback recreates it.
    #[default]
    Retire,
    /// Stop each trail's logging and keep its configuration; scanners keep listing it.
    Stop,
}

impl ExistingTrails {
    pub fn as_str(self) -> &'static str {
        match self {
            ExistingTrails::Retire => "retire",
            ExistingTrails::Stop => "stop",
        }
    }
}

/// What onboarding does with the account's root user. AWS's centralized root access
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user.html#id_root-user-access-management)
/// lets the management account delete a member account's root credentials and take short,
/// task-scoped root sessions (`sts:AssumeRoot`) instead; CIS AWS Foundations v7.0.0 2.1.1 asks for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RootAccess {
    /// Leave the root user's credentials as they are (the `assure-restrict-root` SCP still denies
    /// their use).
    #[default]
    Keep,
    /// Enable centralized root access for the organization (trusted access for IAM, root
    /// credentials management, root sessions), then delete the account's root password, access
    /// keys and signing certificates and deactivate its MFA devices, through an `sts:AssumeRoot`
    /// session scoped to AWS's `IAMDeleteRootUserCredentials` task policy. verify checks the
    /// account has none left.
    Centralized,
}

impl RootAccess {
    fn is_keep(&self) -> bool {
        *self == RootAccess::Keep
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RootAccess::Keep => "keep",
            RootAccess::Centralized => "centralized",
        }
    }
}

/// The input of one onboarding run; the state machine passes it to every task unchanged as `run`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunInput {
    pub run_id: RunId,
    pub account: AccountId,
    /// Every region the run acts in; a regional step's one task covers them all.
    pub regions: Vec<Region>,
    /// The region that owns global resources (the trail, IAM, SCPs, the logging bucket).
    pub home_region: Region,
    pub org: OrgLayout,
    /// The role assumed in each account.
    pub role_name: String,
    #[serde(default)]
    pub policy: FailurePolicy,
    /// Who the alarms notify: subscribed to the alarm topic by the alarms step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// What happens to the account's own trails (see [`ExistingTrails`]).
    #[serde(default)]
    pub existing_trails: ExistingTrails,
    /// What happens to the account's root user (see [`RootAccess`]).
    #[serde(default, skip_serializing_if = "RootAccess::is_keep")]
    pub root_access: RootAccess,
    /// The organization-wide setup already done for this run, by the `organization` step of the
    /// bulk run it belongs to: what every account shares (trusted access, delegated
    /// administrators, the security account's detectors and analyzers, the policies themselves),
    /// with the facts the account's steps need (`{"scps": {"policies": {NAME: ID}}, ...}`). The
    /// account's steps then do only the account's part. Absent for a run of its own, whose steps
    /// do both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<serde_json::Value>,
    /// Run every step even if the account's baseline held at the end of its last run with the same
    /// settings (by default such a run verifies first and stops there when every control holds).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
    /// Verify also proves delivery: a canary down every path the baseline's logs, findings and
    /// alarms travel, found at its destination (`deliveries.*` evidence). On by default on the
    /// local cloud; on AWS, where a delivery takes minutes, when the configuration asks
    /// (`options.prove_deliveries`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deliveries: bool,
}

/// An endpoint subscribed to the alarm topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notify {
    pub protocol: NotifyProtocol,
    /// An email address for `email`, an `https://` URL for `https`.
    pub endpoint: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifyProtocol {
    Email,
    Https,
}

impl NotifyProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyProtocol::Email => "email",
            NotifyProtocol::Https => "https",
        }
    }
}

impl Notify {
    /// Checks the endpoint fits the protocol.
    /// The endpoint as records show it: an `https` endpoint's path and query (where webhooks keep
    /// their secret) and any user information are left out, `https://HOST/…`; an email address as
    /// it is. Change records, reports and evidence carry this, never the endpoint itself.
    pub fn shown(&self) -> String {
        match self.protocol {
            NotifyProtocol::Email => self.endpoint.clone(),
            NotifyProtocol::Https => {
                let rest = self.endpoint.trim_start_matches("https://");
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                let host = authority.rsplit('@').next().unwrap_or_default();
                format!("https://{host}/…")
            }
        }
    }

    /// The endpoint as a run carries it: [`Notify::shown`]. A run's input is kept whole in the
    /// state machine's execution history, its checkpoints and reports, which more people read than
    /// the deployment's settings; the alarms step takes the endpoint itself from the settings.
    pub fn for_runs(&self) -> Notify {
        Notify { protocol: self.protocol, endpoint: self.shown() }
    }

    /// Whether this is an endpoint with its secret part left out ([`Notify::for_runs`]).
    pub fn is_redacted(&self) -> bool {
        self.protocol == NotifyProtocol::Https && self.endpoint.ends_with("/…")
    }

    /// Whether `endpoint` (a subscription's, say) shows as this one does.
    pub fn shows_as(&self, endpoint: &str) -> bool {
        Notify { protocol: self.protocol, endpoint: endpoint.to_owned() }.shown() == self.shown()
    }

    pub fn validate(&self) -> Result<(), StepError> {
        let ok = match self.protocol {
            NotifyProtocol::Email => {
                let mut parts = self.endpoint.splitn(2, '@');
                matches!((parts.next(), parts.next()), (Some(u), Some(d)) if !u.is_empty() && d.contains('.') && !d.contains(char::is_whitespace))
            }
            NotifyProtocol::Https => self.endpoint.starts_with("https://") && self.endpoint.len() > "https://".len(),
        };
        if ok {
            Ok(())
        } else {
            Err(StepError::invalid_input(format!(
                "notifications.endpoint: {:?} is not a valid {} endpoint",
                self.endpoint,
                self.protocol.as_str()
            )))
        }
    }
}

impl RunInput {
    /// The shared logging bucket in the logging account. Deterministic, so every step and every run
    /// finds it without passing state around.
    pub fn logging_bucket(&self) -> String {
        format!("assure-logs-{}-{}", self.org.logging, self.home_region)
    }

    /// The bucket receiving the logging bucket's own access logs.
    pub fn access_log_bucket(&self) -> String {
        format!("assure-access-logs-{}-{}", self.org.logging, self.home_region)
    }

    /// The alias of the logging bucket's customer-managed KMS key.
    pub const LOGGING_KEY_ALIAS: &'static str = "alias/assure-logs";
}

/// The one binary every step's function runs (`steps/`), told its step by [`STEP_ENV`].
pub const STEP_BINARY: &str = "assure-step";

/// The variable naming the step a function runs (the template sets it per function).
pub const STEP_ENV: &str = "ASSURE_STEP";

/// The body of the SQS message a Task state sends (`sqs:sendMessage.waitForTaskToken`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskMessage {
    pub task_token: String,
    pub step: StepName,
    pub region: Region,
    pub run: RunInput,
    /// The execution's ARN (`$$.Execution.Id`), sent to the preflight task, which takes the
    /// account's run lock for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// The Organizations membership event, sent to the join task (the join state machine's input,
    /// as EventBridge delivered it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Value>,
}

/// One change a step made (or, in plan mode, would make).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The account the resource lives in.
    pub account: AccountId,
    pub region: Region,
    /// For example `s3:bucket/assure-logs-…` or `kms:alias/assure-logs`.
    pub resource: String,
    /// What was done: `create`, `update`, `stop`, …
    pub action: String,
    pub before: Value,
    pub after: Value,
}

/// The evidence that a control holds (or does not) for one resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// A control id from the catalogue.
    pub control: String,
    pub account: AccountId,
    pub region: Region,
    pub resource: String,
    pub passed: bool,
    /// What was observed, for people.
    pub detail: String,
    /// The control's CIS AWS Foundations Benchmark ids (v7.0.0, with v3.0.0 and v1.4.0 as
    /// aliases), where the catalogue maps it; a scanner's finding can be matched to it directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cis: Option<crate::catalogue::CisIds>,
    /// Not passed yet, only because a resource is in one of AWS's transitional states (an analyzer
    /// `CREATING`, a stream `CREATING`, a publishing destination `PENDING_VERIFICATION`): it holds
    /// once AWS finishes, which verify waits for, bounded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// A delivery path's proof: seconds from the canary to its arrival (or to the service's report
    /// that it went out), as the service timestamps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_seconds: Option<f64>,
}

impl Evidence {
    /// The same evidence, marked pending when `transitional` and not passed.
    pub fn pending_if(mut self, transitional: bool) -> Evidence {
        self.pending = transitional && !self.passed;
        self
    }

    /// Evidence for the catalogue entry `control`, with its CIS ids.
    pub fn new(
        control: &crate::catalogue::Entry,
        account: AccountId,
        region: Region,
        resource: impl Into<String>,
        passed: bool,
        detail: impl Into<String>,
    ) -> Evidence {
        Evidence {
            control: control.id.to_owned(),
            account,
            region,
            resource: resource.into(),
            passed,
            detail: detail.into(),
            cis: control.cis.map(|c| c.ids()),
            pending: false,
            took_seconds: None,
        }
    }
}

/// What a step answers through `SendTaskSuccess`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepOutput {
    pub step: StepName,
    pub region: Region,
    /// One line for people.
    pub summary: String,
    #[serde(default)]
    pub changes: Vec<Change>,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// The configuration found before the step acted (what compensation restores).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub snapshot: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunInput {
        serde_json::from_value(serde_json::json!({
            "runId": "onboard-111111111111-1",
            "account": "111111111111",
            "regions": ["us-east-1", "eu-west-1"],
            "homeRegion": "us-east-1",
            "org": {"management": "123456789012", "logging": "222222222222", "security": "333333333333"},
            "roleName": "AssureExecutionRole"
        }))
        .unwrap()
    }

    #[test]
    fn run_input_round_trips_and_defaults_to_hold() {
        let run = sample();
        assert_eq!(run.policy, FailurePolicy::Hold);
        let back: RunInput = serde_json::from_value(serde_json::to_value(&run).unwrap()).unwrap();
        assert_eq!(back, run);
        assert_eq!(run.logging_bucket(), "assure-logs-222222222222-us-east-1");
    }

    #[test]
    fn bad_fields_are_named() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["regions"] = serde_json::json!(["us-east-1", "moon-1"]);
        let err = serde_json::from_value::<RunInput>(v).unwrap_err().to_string();
        assert!(err.contains("moon-1"), "{err}");
        let mut v = serde_json::to_value(sample()).unwrap();
        v["acount"] = serde_json::json!("x");
        let err = serde_json::from_value::<RunInput>(v).unwrap_err().to_string();
        assert!(err.contains("acount"), "{err}");
    }

    #[test]
    fn an_https_endpoint_is_shown_without_its_secret() {
        let n = Notify {
            protocol: NotifyProtocol::Https,
            endpoint: "https://user:pw@hooks.example.com/T0/B1/s3cr3t?token=x".into(),
        };
        assert_eq!(n.shown(), "https://hooks.example.com/…");
        let e = Notify { protocol: NotifyProtocol::Email, endpoint: "secops@example.com".into() };
        assert_eq!(e.shown(), "secops@example.com");
    }

    #[test]
    fn org_roles() {
        let run = sample();
        assert_eq!(run.org.role_of(&run.org.logging), Some("logging"));
        assert_eq!(run.org.role_of(&run.account), None);
    }

    #[test]
    fn step_names_match_serde() {
        for s in StepName::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
            assert_eq!(StepName::parse(s.as_str()), Some(s));
        }
    }
}

/// The version of the baseline a run applied: the release of assure that applied it, and a digest
/// of the controls' desired state under the organization's settings (what the controls put in
/// place and check, the SCPs' documents, the alarms' filters, the deployment's settings). Two runs
/// with the same version put the same baseline in place; an account onboarded under another
/// version is behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaselineVersion {
    /// assure's release (its crates' version).
    pub release: String,
    /// SHA-256 of the desired state, hex.
    pub digest: String,
}

impl std::fmt::Display for BaselineVersion {
    /// `0.1.0+3f2a9c01d4e5`: the release and the digest's first 12 characters.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}+{}", self.release, self.digest.get(..12).unwrap_or(&self.digest))
    }
}

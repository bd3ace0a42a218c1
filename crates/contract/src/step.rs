//! The steps a run is made of: their names, order, and what each one is.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The steps of the onboarding state machine, in the order a run takes them. The serde name is the
/// step's queue suffix, its Task `step` field and its function's name after `assure-step-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepName {
    /// Validates the target and the organization; discovers account-wide state (home region).
    Preflight,
    /// The organization-wide part of every control, once for a bulk run (home region, every region
    /// inside): what all its accounts share.
    Organization,
    /// Checks the role in one region and records that region's existing security setup.
    Discover,
    /// The shared logging bucket and its KMS key in the logging account.
    LoggingBucket,
    /// The IAM roles the controls' steps hand to AWS services, made ahead beside the logging
    /// bucket so IAM has propagated them by the time a service is given one.
    ServiceRoles,
    /// The assure trail: multi-region, validated, encrypted, to the logging bucket and CloudWatch Logs.
    #[serde(rename = "cloudtrail")]
    CloudTrail,
    /// Retires the account's own trails (or stops them, with `existing_trails = "stop"`), once the
    /// assure trail is logging.
    #[serde(rename = "stop-cloudtrail")]
    StopCloudTrail,
    /// Leaves a foreign GuardDuty administrator (per region), recording the detector's settings.
    #[serde(rename = "stop-guardduty")]
    StopGuardDuty,
    /// The security account as GuardDuty administrator, the account a member (per region).
    #[serde(rename = "guardduty")]
    GuardDuty,
    /// One Config recorder and delivery channel to the logging bucket (per region).
    Config,
    /// Organization analyzers and the service-linked role (per region).
    AccessAnalyzer,
    /// Metric filters, alarms and an encrypted topic for CIS v7.0.0 section 5 (section 4 in v3.0.0).
    Alarms,
    /// Session Manager preferences: S3 logging to the logging bucket, encrypted (per region).
    SessionManager,
    /// The mandatory service control policies, attached to the account.
    Scps,
    /// Checks every control, read-only, and records the evidence.
    Verify,
    /// Compensates the completed steps of a failed run whose policy is `rollback`.
    Rollback,
    /// AutoOnboard: starts the run of each account an Organizations membership event is about,
    /// once the member role has reached it (the join state machine's one task).
    Join,
    /// The scheduled verify of the fleet: every onboarded account checked read-only, a record of
    /// each kept, every control that stopped holding sent as an event and, by the deployment's
    /// drift policy, repaired (the watch state machine's one task).
    Watch,
}

impl StepName {
    pub const ALL: [StepName; 18] = [
        StepName::Preflight,
        StepName::Organization,
        StepName::Discover,
        StepName::LoggingBucket,
        StepName::ServiceRoles,
        StepName::CloudTrail,
        StepName::StopCloudTrail,
        StepName::StopGuardDuty,
        StepName::GuardDuty,
        StepName::Config,
        StepName::AccessAnalyzer,
        StepName::Alarms,
        StepName::SessionManager,
        StepName::Scps,
        StepName::Verify,
        StepName::Rollback,
        StepName::Join,
        StepName::Watch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Preflight => "preflight",
            StepName::Organization => "organization",
            StepName::Discover => "discover",
            StepName::LoggingBucket => "logging-bucket",
            StepName::ServiceRoles => "service-roles",
            StepName::CloudTrail => "cloudtrail",
            StepName::StopCloudTrail => "stop-cloudtrail",
            StepName::StopGuardDuty => "stop-guardduty",
            StepName::GuardDuty => "guardduty",
            StepName::Config => "config",
            StepName::AccessAnalyzer => "access-analyzer",
            StepName::Alarms => "alarms",
            StepName::SessionManager => "session-manager",
            StepName::Scps => "scps",
            StepName::Verify => "verify",
            StepName::Rollback => "rollback",
            StepName::Join => "join",
            StepName::Watch => "watch",
        }
    }

    pub fn parse(s: &str) -> Option<StepName> {
        StepName::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// The step's Lambda function: its name, and its role's and log group's. Every function runs
    /// the one binary, [`STEP_BINARY`], configured with its step.
    pub fn function_name(self) -> String {
        format!("assure-step-{}", self.as_str())
    }

    /// Whether the step calls AWS Organizations, the API that throttles first: the worker bounds
    /// how many of these run at once.
    pub fn uses_organizations(self) -> bool {
        matches!(
            self,
            StepName::Preflight
                | StepName::Organization
                | StepName::LoggingBucket
                | StepName::AccessAnalyzer
                | StepName::Scps
                | StepName::Rollback
                | StepName::Join
                | StepName::Watch
        )
    }

    /// Whether the step is a task of an account's run (the onboarding state machine). The
    /// organization step is the bulk state machine's, once per bulk run; the join step the join
    /// state machine's, once per membership event; the watch step the watch state machine's, once
    /// per schedule.
    pub fn account_run(self) -> bool {
        !matches!(self, StepName::Organization | StepName::Join | StepName::Watch)
    }

    /// Whether the step's one task covers every region of the run, each region under its own
    /// checkpoint.
    pub fn regional(self) -> bool {
        matches!(
            self,
            StepName::Discover
                | StepName::StopGuardDuty
                | StepName::GuardDuty
                | StepName::Config
                | StepName::AccessAnalyzer
                | StepName::SessionManager
        )
    }
}

impl std::fmt::Display for StepName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

//! The configuration file (`assure.toml`): the organization's layout, the regions, the role, who
//! the alarms notify and the run options, in one place under version control. Its JSON Schema is
//! generated from these types (`assure config schema`); the CLI validates a file against that
//! schema, so an editor with the schema and the CLI agree on what is valid.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, Region};
use crate::run::{ExistingTrails, FailurePolicy, Notify, RootAccess, DEFAULT_ROLE_NAME};

/// The whole file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "assure configuration", example = example())]
pub struct Config {
    pub organization: Organization,
    /// Regions runs cover unless a command names others; the first is the home region, which owns
    /// the global resources (trail, alarms, logging bucket).
    #[schemars(length(min = 1))]
    pub regions: Vec<Region>,
    /// The role assure assumes in every account (deployed by infra/member-role.template.json).
    #[serde(default = "default_role")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[\w+=,.@-]+$"))]
    pub role_name: String,
    /// Who the CIS alarms notify; subscribed to the alarm topic in each onboarded account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notify>,
    #[serde(default)]
    pub options: Options,
    #[serde(default)]
    pub fleet: Fleet,
}

/// The onboarded accounts kept on the baseline: how often every one is verified, and what happens
/// when a control stops holding (drift).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// How often the pipeline verifies every onboarded account, read-only: an EventBridge schedule
    /// expression: `rate(1 day)` (the default), `rate(6 hours)` (1 takes the singular unit, more the
    /// plural, as EventBridge wants), or a six-field `cron(0 6 * * ? *)`.
    #[serde(default = "default_schedule")]
    #[schemars(regex(
        pattern = r"^(rate\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\)|cron\([^ ()]+( [^ ()]+){5}\))$"
    ))]
    pub schedule: String,
    /// What a scheduled verify does when a control of an account stops holding: `report` (an
    /// event and a record; the default) or `repair` (also an onboarding run of the account, which
    /// changes only what drifted).
    #[serde(default)]
    pub on_drift: OnDrift,
    /// At most this many repair runs a day across the fleet; drift past it is reported only.
    #[serde(default = "default_repairs")]
    #[schemars(range(min = 0, max = 1000))]
    pub max_repairs_per_day: u32,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet { schedule: default_schedule(), on_drift: OnDrift::Report, max_repairs_per_day: default_repairs() }
    }
}

/// What a scheduled verify does with drift.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnDrift {
    /// Send the drift event and keep the record; change nothing.
    #[default]
    Report,
    /// Also start an onboarding run of the account (bounded by `max_repairs_per_day`).
    Repair,
}

impl OnDrift {
    pub fn as_str(self) -> &'static str {
        match self {
            OnDrift::Report => "report",
            OnDrift::Repair => "repair",
        }
    }
}

fn default_schedule() -> String {
    "rate(1 day)".to_owned()
}

fn default_repairs() -> u32 {
    10
}

/// The organization's special accounts. The pipeline runs in the security account; the management
/// account, found from the organization, keeps only the bootstrap stack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// Holds the shared logging bucket all trails and Config deliver to.
    pub logging_account: AccountId,
    /// The delegated administrator for GuardDuty, Access Analyzer and Config.
    pub security_account: AccountId,
}

/// How runs behave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// What a run does when a step fails for good: `hold` (keep, ready for retry) or `rollback`.
    #[serde(default)]
    pub on_failure: FailurePolicy,
    /// Accounts onboarded at once by bulk onboarding.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 40))]
    pub concurrency: u32,
    /// How long a command follows a run before giving up (the run itself goes on).
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 10, max = 86400))]
    pub timeout_seconds: u64,
    /// What onboarding does with the account's own trails: `retire` (record each whole, then delete
    /// its configuration; rollback recreates it) or `stop` (stop logging, keep it).
    #[serde(default)]
    pub existing_trails: ExistingTrails,
    /// What onboarding does with each account's root user: `keep` its credentials, or
    /// `centralized` (enable centralized root access for the organization once, then delete each
    /// onboarded account's root credentials; CIS v7.0.0 2.1.1).
    #[serde(default)]
    pub root_access: RootAccess,
    /// Whether a run's Verify step also proves delivery, sending a canary down every path (a
    /// management event, a configuration snapshot, a sample finding, an analyzer finding, an alarm
    /// notification) and finding it at its destination. Default: on with the local cloud, off on
    /// AWS, where deliveries take minutes (`assure verify --deliveries` proves them on demand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prove_deliveries: Option<bool>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            on_failure: FailurePolicy::Hold,
            concurrency: default_concurrency(),
            timeout_seconds: default_timeout(),
            existing_trails: ExistingTrails::Retire,
            root_access: RootAccess::Keep,
            prove_deliveries: None,
        }
    }
}

fn default_role() -> String {
    DEFAULT_ROLE_NAME.to_owned()
}

fn default_concurrency() -> u32 {
    4
}

fn default_timeout() -> u64 {
    1800
}

fn example() -> serde_json::Value {
    serde_json::json!({
        "organization": {"logging_account": "111111111111", "security_account": "222222222222"},
        "regions": ["us-east-1", "eu-west-1"],
        "role_name": DEFAULT_ROLE_NAME,
        "notifications": {"protocol": "email", "endpoint": "secops@example.com"},
        "options": {"on_failure": "hold", "concurrency": 4, "timeout_seconds": 1800, "existing_trails": "retire", "root_access": "keep"},
        "fleet": {"schedule": "rate(1 day)", "on_drift": "report", "max_repairs_per_day": 10}
    })
}

impl Config {
    /// The JSON Schema of the file.
    pub fn schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
    }
}

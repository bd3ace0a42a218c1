//! Names of the resources assure owns in member accounts. One place, so the controls, verify and
//! the SCPs that protect them cannot drift apart.

pub const TRAIL: &str = "assure-trail";
pub const TRAIL_LOG_GROUP: &str = "assure/cloudtrail";
pub const TRAIL_LOGS_ROLE: &str = "assure-cloudtrail-logs";
pub const ALARM_TOPIC: &str = "assure-security-alarms";
/// The customer managed key the alarm topic is encrypted with: CloudWatch may use it to publish.
pub const ALARM_KEY_ALIAS: &str = "alias/assure-alarms";
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
pub const SCP_ACCESS: &str = "assure-protect-access";
pub const SCP_ROOT: &str = "assure-restrict-root";
/// Attached to the logging and security accounts: the logs and the findings path kept there.
pub const SCP_LOG_ARCHIVE: &str = "assure-protect-log-archive";
/// The service-managed StackSet of the member role (README, deployment step 1); its stacks in
/// member accounts are named `StackSet-assure-member-role-…`.
pub const MEMBER_STACK_SET: &str = "assure-member-role";

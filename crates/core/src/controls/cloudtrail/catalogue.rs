//! What the CloudTrail control puts in place, in the catalogue's terms: each entry's id (the
//! evidence's), the spec's words it implements, and the CIS AWS Foundations Benchmark recommendation
//! it meets, where one does.

use assure_contract::catalogue::{cis, entry, Cis, Entry};
use assure_contract::StepName as S;

pub const ALL_REGIONS: Entry =
    entry("cloudtrail.all-regions", S::CloudTrail, "CloudTrail is enabled in all regions", cis("4.1", "3.1", "3.1"));
pub const LOG_VALIDATION: Entry =
    entry("cloudtrail.log-validation", S::CloudTrail, "CloudTrail log validation is enabled", cis("4.2", "3.2", "3.2"));
pub const TO_LOGGING_ACCOUNT: Entry =
    entry("cloudtrail.to-logging-account", S::CloudTrail, "CloudTrail logs are sent to your Logging account", None);
pub const ENCRYPTED: Entry =
    entry("cloudtrail.encrypted", S::CloudTrail, "CloudTrail logs are encrypted at rest", cis("4.5", "3.5", "3.7"));
/// v1.4.0 3.4, "Ensure CloudTrail trails are integrated with CloudWatch Logs", was dropped
/// later; v7.0.0's section 5 alarms read the trail's log group instead.
pub const CLOUDWATCH_LOGS: Entry = entry(
    "cloudtrail.cloudwatch-logs",
    S::CloudTrail,
    "Unauthorized API calls",
    Some(Cis { v7: None, v3: None, v1_4: Some("3.4") }),
);
pub const OLD_TRAILS_STOPPED: Entry =
    entry("cloudtrail.old-trails-stopped", S::StopCloudTrail, "CloudTrail logs are sent to your Logging account", None);

/// Every entry, in the order verify reports them.
pub(super) const ENTRIES: &[Entry] =
    &[ALL_REGIONS, LOG_VALIDATION, TO_LOGGING_ACCOUNT, ENCRYPTED, CLOUDWATCH_LOGS, OLD_TRAILS_STOPPED];

//! What the alarms control puts in place, in the catalogue's terms: each entry's id (the
//! evidence's), the spec's words it implements, and the CIS AWS Foundations Benchmark recommendation
//! it meets, where one does.

use assure_contract::catalogue::{cis, entry, Entry};
use assure_contract::StepName as S;

pub const UNAUTHORIZED_API_CALLS: Entry =
    entry("alarms.unauthorized-api-calls", S::Alarms, "Unauthorized API calls", cis("5.1", "4.1", "4.1"));
pub const CONSOLE_WITHOUT_MFA: Entry = entry(
    "alarms.console-without-mfa",
    S::Alarms,
    "AWS Management Console authentication failures",
    cis("5.2", "4.2", "4.2"),
);
pub const ROOT_USAGE: Entry =
    entry("alarms.root-usage", S::Alarms, "Restrict the use of root credentials", cis("5.3", "4.3", "4.3"));
pub const IAM_POLICY_CHANGES: Entry =
    entry("alarms.iam-policy-changes", S::Alarms, "IAM policy changes", cis("5.4", "4.4", "4.4"));
pub const CLOUDTRAIL_CHANGES: Entry = entry(
    "alarms.cloudtrail-changes",
    S::Alarms,
    "Disallow modification of Stax AWS CloudTrail logs",
    cis("5.5", "4.5", "4.5"),
);
pub const CONSOLE_AUTH_FAILURES: Entry = entry(
    "alarms.console-auth-failures",
    S::Alarms,
    "AWS Management Console authentication failures",
    cis("5.6", "4.6", "4.6"),
);
pub const CMK_DISABLE_OR_DELETION: Entry = entry(
    "alarms.cmk-disable-or-deletion",
    S::Alarms,
    "Disabling or deleting customer created CMKs",
    cis("5.7", "4.7", "4.7"),
);
pub const S3_BUCKET_POLICY_CHANGES: Entry =
    entry("alarms.s3-bucket-policy-changes", S::Alarms, "S3 bucket policy changes", cis("5.8", "4.8", "4.8"));
pub const CONFIG_CHANGES: Entry =
    entry("alarms.config-changes", S::Alarms, "Disallow modification of AWS Config", cis("5.9", "4.9", "4.9"));
pub const SECURITY_GROUP_CHANGES: Entry =
    entry("alarms.security-group-changes", S::Alarms, "Security Group changes", cis("5.10", "4.10", "4.10"));
pub const NACL_CHANGES: Entry =
    entry("alarms.nacl-changes", S::Alarms, "Network Access Control List changes", cis("5.11", "4.11", "4.11"));
pub const NETWORK_GATEWAY_CHANGES: Entry =
    entry("alarms.network-gateway-changes", S::Alarms, "Network Gateway changes", cis("5.12", "4.12", "4.12"));
pub const ROUTE_TABLE_CHANGES: Entry =
    entry("alarms.route-table-changes", S::Alarms, "Route Table changes", cis("5.13", "4.13", "4.13"));
pub const VPC_CHANGES: Entry = entry("alarms.vpc-changes", S::Alarms, "VPC changes", cis("5.14", "4.14", "4.14"));
pub const ORGANIZATIONS_CHANGES: Entry =
    entry("alarms.organizations-changes", S::Alarms, "Service Control Policies", cis("5.15", "4.15", "4.15"));
pub const TOPIC_ENCRYPTED: Entry =
    entry("alarms.topic-encrypted", S::Alarms, "Prevent removal of Stax CloudWatch alarms", None);
pub const SUBSCRIBED: Entry = entry("alarms.subscribed", S::Alarms, "Prevent removal of Stax CloudWatch alarms", None);

/// Every entry, in the order verify reports them.
pub(super) const ENTRIES: &[Entry] = &[
    UNAUTHORIZED_API_CALLS,
    CONSOLE_WITHOUT_MFA,
    ROOT_USAGE,
    IAM_POLICY_CHANGES,
    CLOUDTRAIL_CHANGES,
    CONSOLE_AUTH_FAILURES,
    CMK_DISABLE_OR_DELETION,
    S3_BUCKET_POLICY_CHANGES,
    CONFIG_CHANGES,
    SECURITY_GROUP_CHANGES,
    NACL_CHANGES,
    NETWORK_GATEWAY_CHANGES,
    ROUTE_TABLE_CHANGES,
    VPC_CHANGES,
    ORGANIZATIONS_CHANGES,
    TOPIC_ENCRYPTED,
    SUBSCRIBED,
];

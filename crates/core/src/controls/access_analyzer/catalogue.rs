//! What the Access Analyzer control puts in place, in the catalogue's terms: each entry's id (the
//! evidence's), the spec's words it implements, and the CIS AWS Foundations Benchmark recommendation
//! it meets, where one does.

use assure_contract::catalogue::{cis, entry, Entry};
use assure_contract::StepName as S;

pub const ORGANIZATION: Entry = entry(
    "access-analyzer.organization",
    S::AccessAnalyzer,
    "The AWS IAM Access Analyzer service is enabled at the AWS Organization level",
    cis("2.18", "1.20", "1.20"),
);
pub const FINDINGS_DELIVERED: Entry = entry(
    "access-analyzer.findings-delivered",
    S::AccessAnalyzer,
    "all IAM Access Analyzer findings are delivered to the StaxTrail S3 bucket in your logging account",
    None,
);
pub const SERVICE_LINKED_ROLE: Entry = entry(
    "access-analyzer.service-linked-role",
    S::AccessAnalyzer,
    "The role is named AWSServiceRoleForAccessAnalyzer",
    None,
);

/// Every entry, in the order verify reports them.
pub(super) const ENTRIES: &[Entry] = &[ORGANIZATION, FINDINGS_DELIVERED, SERVICE_LINKED_ROLE];

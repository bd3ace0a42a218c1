//! What the GuardDuty control puts in place, in the catalogue's terms: each entry's id (the
//! evidence's), the spec's words it implements, and the CIS AWS Foundations Benchmark recommendation
//! it meets, where one does.

use assure_contract::catalogue::{entry, Entry};
use assure_contract::StepName as S;

pub const ENABLED: Entry =
    entry("guardduty.enabled", S::GuardDuty, "Stax enables GuardDuty in all your AWS accounts", None);
pub const SECURITY_ADMINISTRATOR: Entry = entry(
    "guardduty.security-administrator",
    S::GuardDuty,
    "with your Security Account acting as the GuardDuty master",
    None,
);
pub const FINDINGS_EXPORTED: Entry = entry(
    "guardduty.findings-exported",
    S::GuardDuty,
    "All GuardDuty events created within your accounts will be sent to the GuardDuty master",
    None,
);
pub const NO_SUPPRESSION: Entry = entry(
    "guardduty.no-suppression",
    S::GuardDuty,
    "All GuardDuty events created within your accounts will be sent to the GuardDuty master",
    None,
);

/// Every entry, in the order verify reports them.
pub(super) const ENTRIES: &[Entry] = &[ENABLED, SECURITY_ADMINISTRATOR, FINDINGS_EXPORTED, NO_SUPPRESSION];

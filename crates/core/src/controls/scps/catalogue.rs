//! What the SCP control puts in place, in the catalogue's terms: each entry's id (the
//! evidence's), the spec's words it implements, and the CIS AWS Foundations Benchmark recommendation
//! it meets, where one does.

use assure_contract::catalogue::{cis, entry, Cis, Entry};
use assure_contract::StepName as S;

/// v7.0.0 2.1.2, "Ensure authorization guardrails for all AWS Organization accounts", is new.
pub const ATTACHED: Entry = entry(
    "scps.attached",
    S::Scps,
    "Disallow modification of AWS Config",
    Some(Cis { v7: Some("2.1.2"), v3: None, v1_4: None }),
);
pub const RESTRICT_ROOT: Entry =
    entry("scps.restrict-root", S::Scps, "Restrict the use of root credentials", cis("2.7", "1.7", "1.7"));
pub const CENTRALIZED_ROOT: Entry = entry(
    "scps.centralized-root",
    S::Scps,
    "Restrict the use of root credentials",
    Some(Cis { v7: Some("2.1.1"), v3: None, v1_4: None }),
);
pub const ROOT_CREDENTIALS: Entry = entry(
    "scps.root-credentials",
    S::Scps,
    "Restrict the use of root credentials",
    Some(Cis { v7: Some("2.1.1"), v3: None, v1_4: None }),
);
pub const LOG_ARCHIVE: Entry = entry(
    "scps.log-archive",
    S::Scps,
    "Disallow modification of Stax AWS CloudTrail logs",
    Some(Cis { v7: Some("2.1.2"), v3: None, v1_4: None }),
);

/// Every entry, in the order verify reports them.
pub(super) const ENTRIES: &[Entry] = &[ATTACHED, RESTRICT_ROOT, CENTRALIZED_ROOT, ROOT_CREDENTIALS, LOG_ARCHIVE];

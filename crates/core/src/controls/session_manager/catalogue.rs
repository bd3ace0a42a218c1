//! What the Session Manager control puts in place, in the catalogue's terms: each entry's id (the
//! evidence's), the spec's words it implements, and the CIS AWS Foundations Benchmark recommendation
//! it meets, where one does.

use assure_contract::catalogue::{entry, Entry};
use assure_contract::StepName as S;

pub const S3_LOGGING: Entry = entry(
    "session-manager.s3-logging",
    S::SessionManager,
    "All logs are sent to an S3 bucket in your Logging account",
    None,
);
pub const ENCRYPTED: Entry = entry(
    "session-manager.encrypted",
    S::SessionManager,
    "Stax enables auditing and logging of session activity within Session Manager",
    None,
);

/// Every entry, in the order verify reports them.
pub(super) const ENTRIES: &[Entry] = &[S3_LOGGING, ENCRYPTED];

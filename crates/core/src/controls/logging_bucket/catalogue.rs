//! What the logging bucket control puts in place, in the catalogue's terms: each entry's id (the
//! evidence's), the spec's words it implements, and the CIS AWS Foundations Benchmark recommendation
//! it meets, where one does.

use assure_contract::catalogue::{cis, entry, Entry};
use assure_contract::StepName as S;

pub const BUCKET_NOT_PUBLIC: Entry = entry(
    "logging.bucket-not-public",
    S::LoggingBucket,
    "CloudTrail log storage is not publicly accessible",
    cis("3.1.4", "2.1.4", "3.3"),
);
pub const BUCKET_ENCRYPTED: Entry = entry(
    "logging.bucket-encrypted",
    S::LoggingBucket,
    "CloudTrail logs are encrypted at rest",
    cis("4.5", "3.5", "3.7"),
);
pub const KEY_ROTATION: Entry =
    entry("logging.key-rotation", S::LoggingBucket, "CloudTrail logs are encrypted at rest", cis("4.6", "3.6", "3.8"));
pub const BUCKET_ACCESS_LOGGING: Entry = entry(
    "logging.bucket-access-logging",
    S::LoggingBucket,
    "All CloudTrail logs are stored in your logging account",
    cis("4.4", "3.4", "3.6"),
);
pub const BUCKET_TLS_ONLY: Entry = entry(
    "logging.bucket-tls-only",
    S::LoggingBucket,
    "CloudTrail log storage is not publicly accessible",
    cis("3.1.1", "2.1.1", "2.1.2"),
);
pub const BUCKET_VERSIONED: Entry =
    entry("logging.bucket-versioned", S::LoggingBucket, "All CloudTrail logs are stored in your logging account", None);
pub const BUCKET_RETAINED: Entry =
    entry("logging.bucket-retained", S::LoggingBucket, "All CloudTrail logs are stored in your logging account", None);
pub const BUCKET_ORG_SCOPED: Entry =
    entry("logging.bucket-org-scoped", S::LoggingBucket, "CloudTrail logs are sent to your Logging account", None);

/// Every entry, in the order verify reports them.
pub(super) const ENTRIES: &[Entry] = &[
    BUCKET_NOT_PUBLIC,
    BUCKET_ENCRYPTED,
    KEY_ROTATION,
    BUCKET_ACCESS_LOGGING,
    BUCKET_TLS_ONLY,
    BUCKET_VERSIONED,
    BUCKET_RETAINED,
    BUCKET_ORG_SCOPED,
];

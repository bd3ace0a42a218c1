//! What the AWS Config control puts in place, in the catalogue's terms: each entry's id (the
//! evidence's), the spec's words it implements, and the CIS AWS Foundations Benchmark recommendation
//! it meets, where one does.

use assure_contract::catalogue::{cis, entry, Entry};
use assure_contract::StepName as S;

pub const ENABLED: Entry =
    entry("config.enabled", S::Config, "Config is enabled in all regions", cis("4.3", "3.3", "3.5"));
pub const TO_LOGGING_ACCOUNT: Entry =
    entry("config.to-logging-account", S::Config, "Config logs are sent to your Logging account", None);
pub const ENCRYPTED: Entry = entry("config.encrypted", S::Config, "Config logs are encrypted at rest", None);
pub const AGGREGATOR: Entry =
    entry("config.aggregator", S::Config, "All Config logs are stored in your Logging account", None);

/// Every entry, in the order verify reports them.
pub(super) const ENTRIES: &[Entry] = &[ENABLED, TO_LOGGING_ACCOUNT, ENCRYPTED, AGGREGATOR];

//! Newtypes that make bad identifiers unrepresentable: parsed once, valid ever after.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorName, StepError};

/// A 12-digit AWS account id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl JsonSchema for AccountId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AccountId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]{12}$",
            "description": "A 12-digit AWS account id."
        })
    }
}

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountId {
    type Err = StepError;
    fn from_str(s: &str) -> Result<Self, StepError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(StepError::new(
                ErrorName::InvalidInput,
                format!("account id {s:?} is not valid: an AWS account id is exactly 12 digits"),
            ))
        }
    }
}

impl TryFrom<String> for AccountId {
    type Error = StepError;
    fn try_from(s: String) -> Result<Self, StepError> {
        s.parse()
    }
}

impl From<AccountId> for String {
    fn from(a: AccountId) -> String {
        a.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The commercial AWS regions assure knows. A region outside this list is rejected before any call;
/// whether a known region is enabled for an account is checked by preflight.
pub const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// The regions of [`KNOWN_REGIONS`] an account must opt in to (those launched since March 2019):
/// https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html
pub const OPT_IN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
];

/// The service principals GuardDuty delivers findings as: `guardduty.amazonaws.com`, and in an
/// opt-in region `guardduty.REGION.amazonaws.com`, which bucket and key policies must name
/// (https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_exportfindings.html). Every opt-in
/// region's, so one organization-wide policy serves every run, whatever its regions.
pub fn guardduty_principals() -> Vec<String> {
    std::iter::once("guardduty.amazonaws.com".to_owned())
        .chain(OPT_IN_REGIONS.iter().map(|r| format!("guardduty.{r}.amazonaws.com")))
        .collect()
}

/// An AWS region name from [`KNOWN_REGIONS`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl JsonSchema for Region {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Region".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "enum": KNOWN_REGIONS,
            "description": "An AWS region assure knows."
        })
    }
}

impl Region {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether an account must opt in to this region ([`OPT_IN_REGIONS`]).
    pub fn is_opt_in(&self) -> bool {
        OPT_IN_REGIONS.contains(&self.0.as_str())
    }
}

impl FromStr for Region {
    type Err = StepError;
    fn from_str(s: &str) -> Result<Self, StepError> {
        if KNOWN_REGIONS.contains(&s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(StepError::new(
                ErrorName::InvalidInput,
                format!("region {s:?} is not a known AWS region (known: {})", KNOWN_REGIONS.join(", ")),
            ))
        }
    }
}

impl TryFrom<String> for Region {
    type Error = StepError;
    fn try_from(s: String) -> Result<Self, StepError> {
        s.parse()
    }
}

impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A run id. It is also the Step Functions execution name, so it obeys that name's rules
/// (1 to 80 characters of letters, digits, `-` and `_`); a repeated start with the same id cannot
/// create a second execution.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct RunId(String);

impl RunId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of a new onboarding run of `account`, unique per second: `onboard-ACCOUNT-UNIXSECS`.
    pub fn for_onboarding(account: &AccountId, unix_seconds: u64) -> Self {
        Self(format!("onboard-{account}-{unix_seconds}"))
    }

    /// The id of the run AutoOnboard starts for `account`, which joined the organization at
    /// `joined_unix_seconds`: `joined-ACCOUNT-UNIXSECS`. Every event of one join names one run.
    pub fn for_join(account: &AccountId, joined_unix_seconds: i64) -> Self {
        Self(format!("joined-{account}-{joined_unix_seconds}"))
    }

    /// The id of the run a scheduled verify starts to repair `account`'s drift, unique per second:
    /// `repair-ACCOUNT-UNIXSECS`.
    pub fn for_repair(account: &AccountId, unix_seconds: u64) -> Self {
        Self(format!("repair-{account}-{unix_seconds}"))
    }
}

impl FromStr for RunId {
    type Err = StepError;
    fn from_str(s: &str) -> Result<Self, StepError> {
        let ok =
            !s.is_empty() && s.len() <= 80 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(StepError::new(
                ErrorName::InvalidInput,
                format!("run id {s:?} is not valid: 1 to 80 letters, digits, '-' or '_'"),
            ))
        }
    }
}

impl TryFrom<String> for RunId {
    type Error = StepError;
    fn try_from(s: String) -> Result<Self, StepError> {
        s.parse()
    }
}

impl From<RunId> for String {
    fn from(r: RunId) -> String {
        r.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!("123456789012".parse::<AccountId>().is_ok());
        for bad in ["", "12345678901", "1234567890123", "12345678901a", " 23456789012"] {
            let err = bad.parse::<AccountId>().unwrap_err();
            assert_eq!(err.name, ErrorName::InvalidInput, "{bad:?}");
            assert!(err.message.contains("12 digits"), "{}", err.message);
        }
    }

    #[test]
    fn regions_must_be_known() {
        assert!("eu-west-1".parse::<Region>().is_ok());
        let err = "mars-north-1".parse::<Region>().unwrap_err();
        assert!(err.message.contains("mars-north-1"));
    }

    #[test]
    fn run_ids_are_execution_names() {
        let a: AccountId = "123456789012".parse().unwrap();
        let id = RunId::for_onboarding(&a, 1_700_000_000);
        assert_eq!(id.as_str(), "onboard-123456789012-1700000000");
        assert!(id.as_str().parse::<RunId>().is_ok());
        assert!("has space".parse::<RunId>().is_err());
        assert!("x".repeat(81).parse::<RunId>().is_err());
    }

    #[test]
    fn json_round_trip_validates() {
        let a: AccountId = serde_json::from_str("\"123456789012\"").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"123456789012\"");
        assert!(serde_json::from_str::<AccountId>("\"12\"").is_err());
    }
}

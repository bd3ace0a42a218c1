//! The closed set of error names. A step that fails reports exactly one of these to Step Functions
//! (`SendTaskFailure`'s `error`), and the state machine's `Retry` and `Catch` match on them; an ASL
//! file may name only these and `States.*` (checked by `tests/tests/all/statemachine.rs`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One stable error name. Each has a page under `docs/errors/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ErrorName {
    /// Transient: throttling, a 5xx, a timeout, an eventually consistent read. Retried with backoff.
    #[serde(rename = "Assure.Retryable")]
    Retryable,
    /// The account holds something assure must not overwrite (a resource owned by someone else).
    #[serde(rename = "Assure.Conflict")]
    Conflict,
    /// A call was denied: the role is missing a permission, or an SCP blocks it.
    #[serde(rename = "Assure.AccessDenied")]
    AccessDenied,
    /// The run's input is wrong: a malformed id, an account outside the organization, an unknown region.
    #[serde(rename = "Assure.InvalidInput")]
    InvalidInput,
    /// An AWS quota stops the change (for example five SCPs per target).
    #[serde(rename = "Assure.QuotaExceeded")]
    QuotaExceeded,
    /// A control was checked and does not hold (verify found it missing or changed).
    #[serde(rename = "Assure.NotCompliant")]
    NotCompliant,
    /// The account is not ready for a run yet: it joined the organization a moment ago and the
    /// member role has not reached it. The join state machine retries it within a bound.
    #[serde(rename = "Assure.NotReady")]
    NotReady,
    /// Anything else: a bug or an answer assure does not understand. Not retried.
    #[serde(rename = "Assure.Internal")]
    Internal,
}

impl ErrorName {
    pub const ALL: [ErrorName; 8] = [
        ErrorName::Retryable,
        ErrorName::Conflict,
        ErrorName::AccessDenied,
        ErrorName::InvalidInput,
        ErrorName::QuotaExceeded,
        ErrorName::NotCompliant,
        ErrorName::NotReady,
        ErrorName::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorName::Retryable => "Assure.Retryable",
            ErrorName::Conflict => "Assure.Conflict",
            ErrorName::AccessDenied => "Assure.AccessDenied",
            ErrorName::InvalidInput => "Assure.InvalidInput",
            ErrorName::QuotaExceeded => "Assure.QuotaExceeded",
            ErrorName::NotCompliant => "Assure.NotCompliant",
            ErrorName::NotReady => "Assure.NotReady",
            ErrorName::Internal => "Assure.Internal",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorName> {
        ErrorName::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The page documenting this error, relative to the repository root.
    pub fn doc_path(self) -> String {
        format!("docs/errors/{}.md", self.as_str())
    }
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a step reports: a stable name and a message for people (lower case, no trailing dot).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize, JsonSchema)]
#[error("{name}: {message}")]
pub struct StepError {
    pub name: ErrorName,
    pub message: String,
}

impl StepError {
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        Self { name, message: message.into() }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorName::InvalidInput, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorName::Internal, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_json_and_parse() {
        for name in ErrorName::ALL {
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{}\"", name.as_str()));
            assert_eq!(ErrorName::parse(name.as_str()), Some(name));
        }
        assert_eq!(ErrorName::parse("States.ALL"), None);
    }
}

//! The contract between assure's state machine, its step workers and its CLI: the typed values that
//! cross a process boundary (run input, task messages, step outputs), the closed set of error names
//! the state machine matches on, the catalogue of controls, and the configuration file's types.
//!
//! Architecture invariant: this crate knows no AWS SDK and does no I/O. Everything here is plain data
//! with serde and schemars derives, so the JSON the state machine passes around has one definition.

pub mod catalogue;
mod config;
mod error;
mod ids;
mod run;
mod step;

pub use catalogue::{Cis, CisIds};
pub use config::{Config, Fleet, OnDrift, Options, Organization};
pub use error::{ErrorName, StepError};
pub use ids::{guardduty_principals, AccountId, Region, RunId, KNOWN_REGIONS, OPT_IN_REGIONS};
pub use run::{
    BaselineVersion, Change, Evidence, ExistingTrails, FailurePolicy, Notify, NotifyProtocol, OrgLayout, RootAccess,
    RunInput, StepOutput, TaskMessage, DEFAULT_ROLE_NAME, MANAGEMENT_ROLE, STEP_BINARY, STEP_ENV,
};
pub use step::StepName;

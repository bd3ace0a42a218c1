//! The list of controls: the one place that names them all.

use assure_contract::StepName;

use crate::controls::Control;
use crate::controls::{access_analyzer, alarms, cloudtrail, config, guardduty, logging_bucket, scps, session_manager};

/// The baseline, in the order the state machine applies it. Rollback compensates in reverse.
pub const ALL: &[&dyn Control] = &[
    &logging_bucket::LoggingBucket,
    &cloudtrail::CloudTrail,
    &guardduty::GuardDuty,
    &config::Config,
    &access_analyzer::AccessAnalyzer,
    &session_manager::SessionManager,
    &alarms::Alarms,
    &scps::Scps,
];

/// The control whose step `step` is; None for the pipeline's own steps (preflight, discover,
/// verify, rollback).
pub fn owner(step: StepName) -> Option<&'static dyn Control> {
    ALL.iter().copied().find(|c| c.steps().contains(&step))
}

//! The list of controls: the one place that names them all.

use assure_contract::StepName;

use crate::controls::Control;
use crate::controls::{access_analyzer, alarms, cloudtrail, config, guardduty, logging_bucket, scps, session_manager};

/// The baseline, in the order the state machine applies it. Rollback compensates in reverse.
pub const ALL: &[&Control] = &[
    &logging_bucket::CONTROL,
    &cloudtrail::CONTROL,
    &guardduty::CONTROL,
    &config::CONTROL,
    &access_analyzer::CONTROL,
    &session_manager::CONTROL,
    &alarms::CONTROL,
    &scps::CONTROL,
];

/// The control whose step `step` is; None for the pipeline's own steps (preflight, discover,
/// verify, rollback).
pub fn owner(step: StepName) -> Option<&'static Control> {
    ALL.iter().copied().find(|c| c.steps.contains(&step))
}

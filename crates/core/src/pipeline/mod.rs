//! The pipeline: what runs the baseline. The steps that are not a control's (preflight, the
//! organization's part, discover, the service roles made ahead, verify, rollback, join, the fleet's scheduled watch), the dispatch of a task to its step, the dry run, the worker protocol and its
//! checkpoints, the run lock of an account, starting and following runs and bulk runs, the deployment
//! and its templates.
//!
//! Layer rule: imports the controls and `crate::aws`, never `crate::audit` (checked by
//! `crate::layers`).

pub mod bulk;
pub mod catalogue;
pub mod checkpoint;
pub mod deliveries;
pub mod deploy;
pub mod discover;
pub mod fleet;
pub mod infra;
pub mod join;
pub mod lock;
pub mod offboard;
pub mod organization;
pub mod plan;
pub mod preflight;
pub mod resources;
pub mod roles;
pub mod rollback;
pub mod runs;
pub mod service_roles;
pub mod steps;
pub mod verify;
pub mod worker;

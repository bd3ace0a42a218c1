//! The logic of assure over the AWS SDK, in layers that import only downward:
//! - base: [`aws`] (one client factory for every account and region, AWS errors named);
//! - [`controls`]: the baseline, one module per control, each with its snapshot, plan/apply,
//!   evidence and compensation;
//! - [`pipeline`]: what runs the controls: the steps, the worker protocol and its checkpoints, runs,
//!   bulk runs, the dry run, rollback, the deployment and its templates;
//! - [`audit`]: a run's record, put together from the pipeline's histories and checkpoints, and its
//!   reports;
//! - [`local`]: local-only code, what Lambda's service side does on AWS (the event source mappings,
//!   the Runtime API), run by `assure worker` beside the local cloud. No other layer imports it.
//!
//! Architecture invariant: this crate knows no command line and no Lambda runtime. The `assure`
//! binary and the step binaries are glue over it; everything here is testable with an endpoint
//! (the local cloud or wiremock) and nothing else.

pub mod audit;
pub mod aws;
pub mod controls;
pub mod local;
pub mod pipeline;

#[cfg(test)]
mod layers;

pub use assure_contract as contract;

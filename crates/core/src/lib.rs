//! The logic of assure over the AWS SDK: one client factory for every account and region, the steps
//! (plan, apply, verify), the worker protocol that runs a step for a Step Functions task, and the
//! pipeline's deployment and runs.
//!
//! Architecture invariant: this crate knows no command line and no Lambda runtime. The `assure`
//! binary and the step binaries are glue over it; everything here is testable with an endpoint
//! (the local cloud or wiremock) and nothing else.

pub mod audit;
pub mod aws;
pub mod bulk;
pub mod checkpoint;
pub mod deploy;
pub mod infra;
pub mod lambda_service;
pub mod plan;
pub mod report;
pub mod rollback;
pub mod runs;
pub mod steps;
pub mod worker;

pub use assure_contract as contract;

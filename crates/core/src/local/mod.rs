//! Local-only code: the parts of AWS's service side the local cloud does not play, run by
//! `assure worker` beside it. Nothing in production imports this module (the `layers` test checks),
//! and on AWS none of it runs: Lambda itself invokes the step functions.
//! - [`event_sources`]: Lambda's SQS event source mappings: the step queues polled, the functions
//!   invoked with batch events;
//! - [`http`]: the one HTTP client of the local cloud's own API;
//! - [`lambda_service`]: the service side of the Lambda Runtime API, which each function instance
//!   (a process of the step binary) asks for its next invocation.

pub mod event_sources;
pub mod http;
pub mod lambda_service;

//! All of assure's cross-crate tests in one binary (one link instead of many):
//! - `statemachine`: the ASL files checked offline;
//! - `errors`: AWS failure paths through the SDK against wiremock;
//! - `extension`: the local cloud's extension through the Rust SDK;
//! - `e2e`: whole onboarding runs on the local cloud;
//! - `contract`: what every control of the baseline keeps (plan, apply twice, compensate);
//! - `iam`, `rules`: the local cloud refuses what AWS refuses (IAM; the services' own checks);
//! - `lock`: one run per account at a time;
//! - `adversary`: an account's administrators try to switch the baseline off, and cannot;
//! - `deliveries`: a canary down every delivery path, and each path broken on its own;
//! - `join`: AutoOnboard, accounts that join the organization onboarded without a command;
//! - `management`: the management account keeps only its bootstrap stack.

mod all {
    mod adversary;
    mod brownfield;
    mod bulk;
    mod config;
    mod contract;
    mod deliveries;
    mod docs;
    mod drift;
    mod e2e;
    mod errors;
    mod extension;
    mod fleet;
    mod follow;
    mod iam;
    mod infra;
    mod join;
    mod local_authz;
    mod local_authz2;
    mod lock;
    mod management;
    mod resume;
    mod root_access;
    mod rules;
    mod statemachine;
    mod step_errors;
}

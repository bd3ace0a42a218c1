//! `assure-step`: the one binary every step's Lambda function runs, one package for all of them.
//! Each function names its step in its configuration (`ASSURE_STEP`, set per function by the
//! template); `assure-step --step NAME` does the same by hand.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    assure_steps::entry().await
}

//! `assure worker`: Lambda, played locally, in the foreground: the pipeline stack's functions run
//! from their packages, fed by their SQS event source mappings.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::global::{connect, Global};

#[derive(Args)]
pub(crate) struct WorkerArgs {
    /// Steps run at once, across all queues.
    #[arg(long, default_value_t = 8, env = "ASSURE_WORKER_CONCURRENCY")]
    concurrency: usize,
    /// Of those, steps that call AWS Organizations (preflight, organization, logging-bucket,
    /// access-analyzer, scps, rollback, join). With ASSURE_ORGANIZATIONS_RPS set, every step
    /// binary paces its Organizations requests through one file the worker keeps, so together
    /// they stay within that budget however many run.
    #[arg(long, default_value_t = 8, env = "ASSURE_WORKER_ORG_CONCURRENCY")]
    org_concurrency: usize,
}

pub(crate) async fn run(g: &Global, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let aws = Arc::new(connect(g).await?);
    eprintln!("worker: running the functions of the pipeline stack in account {}", aws.pipeline().account);
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    assure_core::local::event_sources::supervise(aws, args.concurrency, args.org_concurrency, stop).await;
    Ok(ExitCode::SUCCESS)
}

//! `assure worker`: the step workers in the foreground (the local event source mapping).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::global::{connect, Global};

#[derive(Args)]
pub(crate) struct WorkerArgs {
    /// Directory of the assure-step binary (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<std::path::PathBuf>,
    /// Steps run at once, across all queues.
    #[arg(long, default_value_t = 8, env = "ASSURE_WORKER_CONCURRENCY")]
    concurrency: usize,
    /// Of those, steps that call AWS Organizations (preflight, logging-bucket, access-analyzer,
    /// scps, rollback). With ASSURE_ORGANIZATIONS_RPS set, every step binary paces its
    /// Organizations requests through one file the worker keeps, so together they stay within
    /// that budget however many run.
    #[arg(long, default_value_t = 8, env = "ASSURE_WORKER_ORG_CONCURRENCY")]
    org_concurrency: usize,
}

pub(crate) async fn run(g: &Global, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let aws = Arc::new(connect(g).await?);
    let bin_dir = match args.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()
            .context("locating this binary")?
            .parent()
            .context("this binary has no directory")?
            .to_path_buf(),
    };
    eprintln!("worker: running steps from {} against account {}", bin_dir.display(), aws.pipeline().account);
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    assure_core::pipeline::worker::supervise(aws, bin_dir, args.concurrency, args.org_concurrency, stop).await;
    Ok(ExitCode::SUCCESS)
}

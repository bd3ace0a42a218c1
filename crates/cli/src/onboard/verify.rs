//! `assure verify`: the evidence that the baseline holds, and the deliveries proven.

use std::process::ExitCode;
use std::time::Duration;

use assure_contract::RunInput;

use crate::global::{Global, Output};

use super::*;

pub(crate) async fn verify(g: &Global, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    // Verify's checks are the same whichever way the run treated the account's own trails; the
    // root user's credentials are checked when the config file asks for centralized root access.
    let choices = Choices::of(g, Some(Policy::Hold), None, None)?;
    let (aws, run) = run_input(g, &args.target.account, args.target.regions.as_deref(), None, choices).await?;
    assure_core::pipeline::preflight::validate(&aws, &run).await?;
    // The canaries first: what they deliver refreshes what the services report of their last
    // delivery (a trail's LatestDeliveryError stays until a delivery succeeds), which the
    // controls' checks then read.
    let proofs = if args.deliveries { prove_deliveries(&aws, &run, args.wait).await? } else { vec![] };
    let mut evidence = assure_core::pipeline::verify::check(&aws, &run).await?;
    evidence.extend(proofs);
    let failed = assure_core::pipeline::verify::failures(&evidence);
    if g.output == Output::Json {
        let doc = serde_json::json!({
            "account": run.account, "regions": run.regions, "compliant": failed.is_empty(), "evidence": evidence
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for e in &evidence {
            let cis = e.cis.as_ref().and_then(|c| c.v7.as_deref()).unwrap_or("-");
            // A delivery proven names where it arrived and how long it took.
            let proof = e.control.starts_with("deliveries.");
            let what = match (e.passed, proof) {
                (true, false) => e.resource.clone(),
                (true, true) => format!("{} ({})", e.resource, e.detail),
                (false, _) => format!("{}: {}", e.resource, e.detail),
            };
            // … : not yet, only because AWS is still making a resource (see Evidence::pending).
            let mark = match (e.passed, e.pending) {
                (true, _) => "✓",
                (false, true) => "…",
                (false, false) => "✗",
            };
            println!("{mark} {:<36} {:<15} CIS {cis:<6} {what}", e.control, e.region);
        }
        println!();
        let (proofs, controls): (Vec<_>, Vec<_>) = evidence.iter().partition(|e| e.control.starts_with("deliveries."));
        let held = |list: &[&assure_contract::Evidence]| list.iter().filter(|e| e.passed).count();
        println!("{}/{} controls hold in account {}", held(&controls), controls.len(), run.account);
        if !proofs.is_empty() {
            println!("{}/{} deliveries proven", held(&proofs), proofs.len());
        }
    }
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if assure_core::pipeline::verify::only_pending(&evidence) {
        eprintln!(
            "not yet: {} control(s) wait for AWS to finish making a resource; verify again shortly:",
            failed.len()
        );
    } else {
        eprintln!("not compliant: {} control(s) do not hold:", failed.len());
    }
    for f in &failed {
        eprintln!("  {f}");
    }
    Ok(ExitCode::FAILURE)
}

/// Sends the canaries and waits, up to `wait` seconds, for each to arrive or fail, saying on
/// stderr what is still on its way.
pub(super) async fn prove_deliveries(
    aws: &assure_core::aws::Aws,
    run: &RunInput,
    wait: u64,
) -> anyhow::Result<Vec<assure_contract::Evidence>> {
    use assure_core::pipeline::deliveries;

    let canary = deliveries::Canary::new(run);
    eprintln!("proving delivery: canary {} sent down every path in {} region(s)", canary.marker, run.regions.len());
    let sent = deliveries::send(aws, run, &canary).await?;
    let found = deliveries::look_until(aws, run, &canary, &sent, Duration::from_secs(wait), |found| {
        let pending: Vec<_> = found.iter().filter(|e| e.pending).collect();
        let done = found.len() - pending.len();
        eprintln!("  {done}/{} delivered or failed; waiting for {}", found.len(), describe(&pending));
    })
    .await?;
    // Past the wait, what has not arrived is a failure: the canary role is removed all the same,
    // and the alarm put back.
    let found: Vec<_> = found
        .into_iter()
        .map(|mut e| {
            if e.pending {
                e.pending = false;
                e.detail = format!("{} — gave up after {wait} s (--wait)", e.detail);
            }
            e
        })
        .collect();
    deliveries::settle(aws, run, &found).await?;
    Ok(found)
}

/// `deliveries.cloudtrail in eu-west-1, …`, at most five.
pub(super) fn describe(pending: &[&assure_contract::Evidence]) -> String {
    let mut names: Vec<String> = pending.iter().take(5).map(|e| format!("{} in {}", e.control, e.region)).collect();
    if pending.len() > 5 {
        names.push(format!("{} more", pending.len() - 5));
    }
    names.join(", ")
}

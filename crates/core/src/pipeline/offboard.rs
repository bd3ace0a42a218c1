//! Offboarding: an account out of the fleet, its runs rolled back newest first so its configuration
//! is the one it had before it was first onboarded (but for what each rollback report calls not
//! restorable), and a record of it (`fleet/offboarded/ACCOUNT/TIME.json`).
//!
//! The account's note goes first, so no watch checks (or repairs) it while its baseline is taken
//! apart, and one lock holds the account for the whole offboarding, so no run of it starts between
//! two rollbacks. A compensation that fails puts the note back: the account stays in the fleet and
//! offboarding it again runs only what failed.

use assure_contract::{AccountId, ErrorName, RunInput, StepError};
use serde::Serialize;

use crate::aws::Aws;
use crate::controls::Report;
use crate::pipeline::checkpoint::{self, now, Expect, Store};
use crate::pipeline::fleet::{later, offboarded_key};
use crate::pipeline::verify::{onboarded_key, Onboarded};
use crate::pipeline::{lock, rollback, runs};

/// One run rolled back.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolledBack {
    pub run_id: String,
    pub report: Report,
}

/// The record an offboarding leaves.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Offboarded {
    pub account: AccountId,
    pub at: String,
    pub runs: Vec<RolledBack>,
    /// The run the account's note named, its last before offboarding.
    pub last_run: Option<String>,
}

/// What an offboarding came to.
#[derive(Debug)]
pub enum Outcome {
    /// Out of the fleet, every run rolled back; the record and where it is kept.
    Done { record: Offboarded, key: String },
    /// Offboarded at `at` and not onboarded since: nothing to do.
    AlreadyOffboarded { at: String },
    /// Some compensations failed: the account stays in the fleet.
    CompensationsFailed { failed: usize, runs: Vec<RolledBack> },
}

/// Offboards `account`; `rolled` hears of each run once it is rolled back.
pub async fn offboard(
    aws: &Aws,
    account: &AccountId,
    mut rolled: impl FnMut(&RunInput, &Report),
) -> Result<Outcome, StepError> {
    let store = Store::new(aws);
    let note_key = onboarded_key(account);
    let note = store.get_json::<Onboarded>(&note_key).await?;
    let listed = runs::list(aws, Some(account.as_str()), None).await?;
    if note.is_none() && listed.is_empty() {
        return Err(StepError::invalid_input(format!(
            "account {account}: not onboarded (no run of it, not in the fleet)"
        )));
    }
    if note.is_none() {
        let last = store.keys(&offboarded_key(account, "")).await?.pop();
        let last = last.as_deref().and_then(|k| k.rsplit('/').next()).and_then(|k| k.strip_suffix(".json"));
        if let Some(at) = last.filter(|at| listed.iter().all(|r| !later(&r.started, at))) {
            return Ok(Outcome::AlreadyOffboarded { at: at.to_owned() });
        }
    }
    if let Some(active) = listed.iter().find(|r| r.status == "RUNNING") {
        return Err(StepError::new(
            ErrorName::Conflict,
            format!("account {account}: run {} is active; offboard once it ends", active.run_id),
        ));
    }
    // The runs to roll back: those Step Functions still lists (it keeps an execution's history 90
    // days after it ends), and the note's. A run of the account with checkpoints but neither is
    // older: rolling back without it would not restore the account, so nothing is done.
    let mut to_roll: Vec<(time::OffsetDateTime, RunInput)> = Vec::new();
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    for summary in &listed {
        to_roll.push((parse(&summary.started), runs::input_of(aws, &summary.run_id).await?));
    }
    if let Some((n, _)) = &note {
        if let Some(run) = n.run.clone().filter(|r| to_roll.iter().all(|(_, k)| k.run_id != r.run_id)) {
            to_roll.push((parse(&n.at), run));
        }
    }
    let known: Vec<String> = to_roll.iter().map(|(_, r)| r.run_id.to_string()).collect();
    let unknown: Vec<String> =
        store.run_ids().await?.into_iter().filter(|id| id.contains(account.as_str()) && !known.contains(id)).collect();
    if !unknown.is_empty() {
        return Err(StepError::new(
            ErrorName::Conflict,
            format!(
                "account {account}: run(s) {} have checkpoints but no execution history any more (Step Functions keeps it 90 days): \
                 offboarding without them would not restore the account; nothing was changed",
                unknown.join(", ")
            ),
        ));
    }
    // Newest first: each rollback puts back the configuration its run found, so the oldest run's
    // comes last and leaves the account as it was before assure.
    to_roll.sort_by_key(|r| std::cmp::Reverse(r.0));
    let holder = lock::Holder::Process { what: "offboard".to_owned(), worker: checkpoint::worker_id() };
    lock::acquire(aws, &lock::Lock::new(account, "offboard", holder.clone())).await?;
    let outcome = under_lock(aws, &store, &note_key, note.as_ref().map(|(n, _)| n), &to_roll, &mut rolled).await;
    // The lock goes whatever happened under it.
    let released = lock::release(aws, account, &holder).await;
    let (done, failed) = outcome?;
    released?;
    if failed > 0 {
        return Ok(Outcome::CompensationsFailed { failed, runs: done });
    }
    let at = now();
    let record = Offboarded {
        account: account.clone(),
        at: at.clone(),
        runs: done,
        last_run: note.as_ref().map(|(n, _)| n.run_id.clone()),
    };
    let key = offboarded_key(account, &at);
    store.put_json(&key, &record, Expect::Any).await?;
    Ok(Outcome::Done { record, key })
}

/// The note taken out, every run rolled back, the note put back if a compensation failed: (the
/// runs rolled back, how many compensations failed).
async fn under_lock(
    aws: &Aws,
    store: &Store,
    note_key: &str,
    note: Option<&Onboarded>,
    to_roll: &[(time::OffsetDateTime, RunInput)],
    rolled: &mut impl FnMut(&RunInput, &Report),
) -> Result<(Vec<RolledBack>, usize), StepError> {
    store.delete(note_key).await?;
    let mut done = Vec::new();
    let mut failed = 0;
    let mut outcome = Ok(());
    for (_, run) in to_roll {
        let report = match rollback::run(aws, run).await {
            Ok(r) => r,
            // A run that recorded nothing (refused before any step) has nothing to roll back.
            Err(e) if e.message.contains("no checkpoints") => continue,
            Err(e) => {
                outcome = Err(e);
                break;
            }
        };
        rolled(run, &report);
        failed += report.failed.len();
        done.push(RolledBack { run_id: run.run_id.to_string(), report });
    }
    if failed > 0 || outcome.is_err() {
        if let Some(n) = note {
            store.put_json(note_key, n, Expect::Any).await?;
        }
    }
    outcome.map(|()| (done, failed))
}

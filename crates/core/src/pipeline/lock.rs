//! One run per account at a time. Two runs changing one account at once would interleave their
//! changes, and the second would take its before-snapshot of a half-onboarded account, so rolling
//! it back would restore that.
//!
//! The lock is an object in the checkpoint bucket, `locks/ACCOUNT.json`, written with S3
//! conditional writes (only one of two writers racing for it wins). It names its holder, and is
//! held exactly while the holder is active:
//! - an execution (an onboarding or a retry) while Step Functions reports it `RUNNING`: the lock
//!   survives a crashed worker, since another worker carries the execution on, and ends with the
//!   execution, with nothing to release. The CLI writes it, naming the execution it is about to
//!   start, before `StartExecution`; the preflight task writes it for executions started by other
//!   means (bulk runs, onboarding on join). A lock naming an execution that does not exist yet
//!   holds for [`START_GRACE`], the time between the CLI's write and its `StartExecution`.
//! - a process (`assure runs rollback`) until its lease ends, [`LEASE`] after it began, or until it
//!   releases the lock when done.
//!
//! A run that finds the lock held by another active holder is refused before any change, with
//! `Assure.Conflict` naming the holder. A lock whose holder is no longer active is taken over.

use std::time::{Duration, SystemTime};

use assure_contract::{AccountId, ErrorName, StepError};
use serde::{Deserialize, Serialize};

use crate::aws::{error_code, Aws, AwsResultExt};
use crate::pipeline::checkpoint::{now, Expect, Store};

/// How long a lock naming an execution that does not exist yet holds.
pub const START_GRACE: Duration = Duration::from_secs(60);
/// How long a process's lock holds unless released.
pub const LEASE: Duration = Duration::from_secs(30 * 60);

/// Who holds an account's lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Holder {
    /// An execution of the onboarding state machine.
    Execution { arn: String },
    /// A process of the CLI (a rollback), `host:pid`.
    Process { what: String, worker: String },
}

/// The lock object.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lock {
    pub account: AccountId,
    pub run_id: String,
    pub holder: Holder,
    /// Seconds since the epoch when it was written, and, for a process, when it lapses.
    pub acquired_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The same time, for people.
    pub acquired: String,
}

fn epoch() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn key(account: &AccountId) -> String {
    format!("locks/{account}.json")
}

impl Lock {
    pub fn new(account: &AccountId, run_id: &str, holder: Holder) -> Lock {
        let at = epoch();
        let expires_at = matches!(holder, Holder::Process { .. }).then(|| at + LEASE.as_secs());
        Lock {
            account: account.clone(),
            run_id: run_id.to_owned(),
            holder,
            acquired_at: at,
            expires_at,
            acquired: now(),
        }
    }

    /// The holder, for an error message.
    fn shown(&self) -> String {
        match &self.holder {
            Holder::Execution { arn } => {
                format!("run {} (execution {})", self.run_id, arn.rsplit(':').next().unwrap_or(arn))
            }
            Holder::Process { what, worker } => {
                format!("run {} ({what} by {worker}, since {})", self.run_id, self.acquired)
            }
        }
    }
}

/// Whether `lock`'s holder is still active.
async fn active(aws: &Aws, lock: &Lock) -> Result<bool, StepError> {
    match &lock.holder {
        Holder::Process { .. } => Ok(lock.expires_at.is_some_and(|t| t > epoch())),
        Holder::Execution { arn } => match aws.pipeline().sfn().describe_execution().execution_arn(arn).send().await {
            Ok(d) => Ok(d.status().as_str() == "RUNNING"),
            Err(e) if error_code(&e) == Some("ExecutionDoesNotExist") => {
                Ok(epoch() < lock.acquired_at + START_GRACE.as_secs())
            }
            Err(e) => Err(e).aws(format!("states:DescribeExecution {arn}")),
        },
    }
}

/// Takes the account's lock for `lock.holder`, or refuses with `Assure.Conflict` naming the active
/// holder. Taking a lock one already holds succeeds.
pub async fn acquire(aws: &Aws, lock: &Lock) -> Result<(), StepError> {
    let store = Store::new(aws);
    let key = key(&lock.account);
    // A lock someone else wrote between our read and our write is read again.
    for _ in 0..3 {
        let expect = match store.get_json::<Lock>(&key).await? {
            Some((held, _)) if held.holder == lock.holder => return Ok(()),
            Some((held, etag)) => {
                if active(aws, &held).await? {
                    return Err(conflict(&lock.account, &held));
                }
                Expect::Unchanged(etag)
            }
            None => Expect::Absent,
        };
        if store.put_json(&key, lock, expect).await?.is_some() {
            return Ok(());
        }
    }
    Err(StepError::new(ErrorName::Retryable, format!("account {}: the run lock {key} keeps changing", lock.account)))
}

fn conflict(account: &AccountId, held: &Lock) -> StepError {
    StepError::new(
        ErrorName::Conflict,
        format!(
            "account {account} has an active run: {}; one run per account at a time, so wait for it to end (assure runs show {})",
            held.shown(),
            held.run_id
        ),
    )
}

/// Releases the account's lock if `holder` still holds it (a process when done). An execution's
/// lock ends with the execution and needs no release.
pub async fn release(aws: &Aws, account: &AccountId, holder: &Holder) -> Result<(), StepError> {
    let store = Store::new(aws);
    let key = key(account);
    let Some((held, etag)) = store.get_json::<Lock>(&key).await? else { return Ok(()) };
    if &held.holder != holder {
        return Ok(());
    }
    // Expired at once, rather than deleted: the write is conditional on the lock being unchanged
    // (someone who took it over in between keeps it).
    store.put_json(&key, &Lock { expires_at: Some(0), ..held }, Expect::Unchanged(etag)).await?;
    Ok(())
}

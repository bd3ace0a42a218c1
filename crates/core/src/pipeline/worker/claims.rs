//! A step's checkpoint claim: one worker holds a step at a time, for a span it keeps extending;
//! a worker that finds the step done answers with its recorded output.

use std::time::Duration;

use assure_contract::{ErrorName, StepError, StepName, TaskMessage};
use serde_json::Value;

use super::{heartbeat_interval, visibility_window};
use crate::aws::Aws;
use crate::controls::Known;
use crate::pipeline::checkpoint::{input_digest, now, task_digest, worker_id, Expect, Record, Status, Store};

/// Runs a task under its checkpoint. `Ok(None)` when another worker holds the step (and answers);
/// `Ok(Some(result))` when this worker ran it (or found it done) and must answer; `Err` when the
/// checkpoint store itself failed.
pub(super) async fn checkpointed(
    aws: &Aws,
    store: &Store,
    task: &TaskMessage,
    before: Option<&Value>,
) -> Result<Option<Result<assure_contract::StepOutput, StepError>>, StepError> {
    let run = &task.run;
    let key = Store::key(run.run_id.as_str(), task.step, &task.region);
    let digest = input_digest(run, task.step, &task.region);
    let me = task_digest(&task.task_token);
    let mut rec = Record::first(run, task.step, &task.region, me.clone(), worker_id());
    rec.held_until = Some(hold_end());
    // A first attempt claims the step without reading first (one request, not two); only when a
    // record is there already is it read.
    let etag = match store.put(&key, &rec, Expect::Absent).await? {
        Some(etag) => etag,
        None => {
            let Some((found, found_etag)) = unheld(store, &key, task).await? else {
                tracing::info!(step = %task.step, region = %task.region, "another worker claimed this step first");
                return Ok(None);
            };
            if found.status == Status::Completed && found.input_digest == digest {
                if let Some(out) = resume(aws, task, &found).await? {
                    tracing::info!(step = %task.step, region = %task.region, "completed before with the same input; checked, unchanged");
                    return Ok(Some(Ok(out)));
                }
            }
            if found.status == Status::Running && found.task == me {
                // The message came back while its step ran: the holder stopped extending it (it
                // died, or SQS delivered twice). Take the step over; the claim's ETag lets only one
                // answer.
                tracing::info!(step = %task.step, region = %task.region, attempt = found.attempt, "taking over a step whose worker let its message go");
            }
            rec.attempt = found.attempt + 1;
            // The earlier attempts' waits for AWS stay counted (the record is the step's, not the attempt's).
            rec.waited_seconds = found.waited_seconds;
            rec.started_at = now();
            rec.held_until = Some(hold_end());
            let Some(etag) = store.put(&key, &rec, Expect::Unchanged(found_etag)).await? else {
                tracing::info!(step = %task.step, region = %task.region, "another worker claimed this step first");
                return Ok(None);
            };
            etag
        }
    };
    let hold = Hold::keep(store.clone(), key.clone(), rec.clone(), etag);
    let attempt = rec.attempt;
    tracing::info!(step = %task.step, region = %task.region, account = %run.account, run = %run.run_id, attempt, "step started");
    // Only a first attempt starts from what discover read: an earlier attempt may have changed
    // what it read.
    let known = Known(before.filter(|_| attempt == 1));
    // The steps' futures are large: on the heap, not on the caller's stack.
    let (mut result, mut waited) =
        crate::aws::counting_waits(Box::pin(crate::pipeline::steps::dispatch(aws, task, known))).await;
    if let (Some(_), Err(e)) = (known.0, &result) {
        // The account may have changed since discover (someone made a detector a moment ago, and
        // the step's create was refused): once more, reading everything. A throttled or denied
        // call would fail the same way; Step Functions retries the first.
        if !matches!(e.name, ErrorName::Retryable | ErrorName::AccessDenied) {
            tracing::info!(step = %task.step, region = %task.region, error = %e, "failed starting from what discover read; again, reading the account");
            let again =
                crate::aws::counting_waits(Box::pin(crate::pipeline::steps::dispatch(aws, task, Known::default())))
                    .await;
            result = again.0;
            waited += again.1;
        }
    }
    match &result {
        Ok(out) => tracing::info!(step = %task.step, region = %task.region, summary = %out.summary, "step succeeded"),
        Err(e) => tracing::warn!(step = %task.step, region = %task.region, error = %e, "step failed"),
    }
    let Some(etag) = hold.release().await else {
        tracing::warn!(step = %task.step, region = %task.region, "another worker took this step over; not answering");
        return Ok(None);
    };
    rec.finished_at = Some(now());
    rec.held_until = None;
    let waited = waited + rec.waited_seconds.unwrap_or(0.0);
    rec.waited_seconds = (waited > 0.0).then_some((waited * 1000.0).round() / 1000.0);
    match &result {
        Ok(out) => {
            rec.status = Status::Completed;
            rec.output = Some(out.clone());
        }
        Err(e) => {
            rec.status = Status::Failed;
            rec.error = Some(e.clone());
        }
    }
    // Only the holder of the claim completes the step.
    if store.put(&key, &rec, Expect::Unchanged(etag)).await?.is_none() {
        tracing::warn!(step = %task.step, region = %task.region, "another worker took this step over; not answering");
        return Ok(None);
    }
    Ok(Some(result))
}

/// How long a claim holds without renewal: as long as a held message stays invisible, three
/// heartbeat intervals.
fn hold_span() -> Duration {
    Duration::from_secs(visibility_window(heartbeat_interval()) as u64)
}

fn hold_end() -> String {
    crate::pipeline::checkpoint::from_now(hold_span())
}

/// The step's record once no live worker holds it: a record another worker is still running (its
/// hold renewed within [`hold_span`]) is waited for, however it got there: a retry of a failed
/// run while a step of the stopped execution still runs, a task Step Functions timed out and
/// retried, or SQS delivering a message twice. Taking it over would have two workers act on one
/// step. A holder that dies stops renewing, and its hold runs out. `None` without a record.
async fn unheld(store: &Store, key: &str, task: &TaskMessage) -> Result<Option<(Record, String)>, StepError> {
    let mut said = false;
    loop {
        let Some((found, etag)) = store.get(key).await? else { return Ok(None) };
        let Some(left) = found.held_for() else { return Ok(Some((found, etag))) };
        if !said {
            tracing::info!(step = %task.step, region = %task.region, worker = %found.worker, attempt = found.attempt, "the step is running in another worker; waiting for it");
            said = true;
        }
        // Read again within a second (a step mostly finishes in seconds, and the holder renews
        // only every heartbeat interval), and by the hold's end: renewed, finished or run out.
        let wait = left.min(heartbeat_interval()).min(Duration::from_secs(1));
        tokio::time::sleep(wait + Duration::from_millis(50)).await;
    }
}

/// A claim held while its step runs: renews the record's `heldUntil` every heartbeat interval.
struct Hold {
    stop: tokio::sync::oneshot::Sender<()>,
    renewing: tokio::task::JoinHandle<Option<String>>,
}

impl Hold {
    fn keep(store: Store, key: String, mut rec: Record, etag: String) -> Hold {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let every = heartbeat_interval();
        let renewing = tokio::spawn(async move {
            let mut etag = etag;
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                // A renewal under way finishes before the hold is released: its ETag is the claim.
                tokio::select! {
                    _ = &mut stopped => return Some(etag),
                    _ = tick.tick() => {}
                }
                rec.held_until = Some(hold_end());
                match store.put(&key, &rec, Expect::Unchanged(etag.clone())).await {
                    Ok(Some(renewed)) => etag = renewed,
                    // Another worker took the step over (the hold had run out).
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::warn!(key = %key, error = %e, "could not renew the step's hold; another worker may take it over")
                    }
                }
            }
        });
        Hold { stop, renewing }
    }

    /// Stops renewing; the claim's ETag, or `None` when another worker took the step over.
    async fn release(self) -> Option<String> {
        let _ = self.stop.send(());
        self.renewing.await.ok().flatten()
    }
}

/// A step completed before with the same input: check it read-only. The recorded output stands
/// when nothing would change (`Some`); `None` when the account drifted and the step must act.
async fn resume(aws: &Aws, task: &TaskMessage, rec: &Record) -> Result<Option<assure_contract::StepOutput>, StepError> {
    let Some(recorded) = rec.output.clone() else { return Ok(None) };
    match task.step {
        // Snapshots are of the account before onboarding: never retaken.
        StepName::Preflight | StepName::Discover | StepName::Rollback => Ok(Some(recorded)),
        // Verify is read-only and its evidence should be fresh.
        StepName::Verify => Ok(None),
        _ => {
            let planned = crate::pipeline::steps::dispatch(&aws.planning_copy(), task, Known::default()).await?;
            Ok(planned.changes.is_empty().then_some(recorded))
        }
    }
}

//! The worker protocol. A Task state puts `{taskToken, step, region, run}` on the step's SQS queue
//! (`sqs:sendMessage.waitForTaskToken`); a worker runs the step and answers `SendTaskSuccess` with
//! the step's output or `SendTaskFailure` with one of the closed set of error names.
//!
//! Liveness is the message's, not the task's. A Task's `HeartbeatSeconds` would count from when the
//! message is sent, so time spent waiting in the queue behind the function's `MaximumConcurrency`
//! (hundreds of tasks in a bulk run) would time tasks out before any worker saw them. Instead the
//! worker holding a message keeps it invisible for a short window ([`visibility_window`]) and
//! extends it while it works ([`HEARTBEAT_ENV`]); a worker that dies stops extending, the message
//! comes back within the window, and the next worker takes the step over from its checkpoint. A
//! message delivered `maxReceiveCount` times without an answer moves to the dead-letter queue,
//! whose consumer fails the task ([`fail_dead_letter`]), so a crash loop ends the run instead of
//! waiting for the task's timeout.
//!
//! On AWS the step binaries are Lambda functions fed by the queue and by its dead-letter queue.
//! Locally, [`supervise`] plays Lambda: the event source mapping long-polls every step queue and
//! dead-letter queue and invokes the step's function (a long-lived process of the step binary,
//! through the Runtime API of [`crate::lambda_service`]) with an SQS batch event, deleting the
//! message only when the answer does not list it as failed (so a killed instance's message comes
//! back).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use assure_contract::{ErrorName, StepError, StepName, TaskMessage};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::controls::{self, Known};
use crate::pipeline::checkpoint::{input_digest, now, task_digest, worker_id, Expect, Record, Status, Store};

/// Environment variable: seconds between extensions of the message's visibility (default 10,
/// fractions allowed); a message not extended for [`visibility_window`] comes back to the queue.
pub const HEARTBEAT_ENV: &str = "ASSURE_HEARTBEAT_SECONDS";

/// The dead-letter queue of a step queue is named by this suffix.
pub const DEAD_LETTER_SUFFIX: &str = "-dlq";

/// Step Functions' limit on a task's output.
const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// Seconds between visibility extensions, from [`HEARTBEAT_ENV`].
pub fn heartbeat_interval() -> Duration {
    let every: f64 = std::env::var(HEARTBEAT_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(10.0);
    Duration::from_secs_f64(every.max(0.1))
}

/// How long a held message stays invisible without an extension: three intervals, in whole seconds
/// as SQS takes them (at least 1). A worker that misses three extensions in a row is taken for dead.
pub fn visibility_window(every: Duration) -> i32 {
    (every.as_secs_f64() * 3.0).ceil().clamp(1.0, 43_200.0) as i32
}

/// The SQS message a task arrived in, as Lambda's event record describes it.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// `eventSourceARN`: the queue (or dead-letter queue) the message came from.
    pub queue_arn: String,
    pub receipt_handle: String,
    /// `ApproximateReceiveCount`: 1 for a first delivery.
    pub receive_count: u32,
}

impl Delivery {
    /// The queue's URL, from its ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
    pub fn queue_url(&self) -> Option<String> {
        let parts: Vec<&str> = self.queue_arn.split(':').collect();
        match parts.as_slice() {
            ["arn", partition, "sqs", region, account, name] => {
                let domain = if partition.starts_with("aws-cn") { "amazonaws.com.cn" } else { "amazonaws.com" };
                Some(format!("https://sqs.{region}.{domain}/{account}/{name}"))
            }
            _ => None,
        }
    }

    /// Whether the message came from a dead-letter queue.
    pub fn from_dead_letter_queue(&self) -> bool {
        self.queue_arn.ends_with(DEAD_LETTER_SUFFIX)
    }
}

/// Keeps a held message invisible while the worker works: sets it to the window at once (the
/// queue's own visibility timeout is long, for a function that never starts), then extends it
/// every interval. Aborted when the task is answered.
fn keep_invisible(sqs: aws_sdk_sqs::Client, delivery: &Delivery) -> Option<tokio::task::JoinHandle<()>> {
    Some(keep_invisible_at(sqs, delivery.queue_url()?, delivery.receipt_handle.clone()))
}

fn keep_invisible_at(sqs: aws_sdk_sqs::Client, url: String, handle: String) -> tokio::task::JoinHandle<()> {
    keep_invisible_from(sqs, url, handle, tokio::time::Instant::now())
}

/// Extends a held message's visibility every interval from `first` on.
fn keep_invisible_from(
    sqs: aws_sdk_sqs::Client,
    url: String,
    handle: String,
    first: tokio::time::Instant,
) -> tokio::task::JoinHandle<()> {
    let every = heartbeat_interval();
    let window = visibility_window(every);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(first, every);
        loop {
            tick.tick().await;
            let r = sqs
                .change_message_visibility()
                .queue_url(&url)
                .receipt_handle(&handle)
                .visibility_timeout(window)
                .send()
                .await;
            if let Err(e) = r {
                tracing::warn!(queue = %url, error = %crate::aws::classify(&e, "sqs:ChangeMessageVisibility"), "could not extend the message; it may come back to another worker");
            }
        }
    })
}

/// What became of one task.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Succeeded,
    Failed(ErrorName),
    /// The execution no longer waits for this token (it timed out or was stopped); nothing to send.
    Abandoned,
}

/// Runs one task message end to end: parse, keep the message while working, run the step, answer
/// Step Functions. Errors only when Step Functions could not be answered (the caller should let the
/// message return). `delivery` is the message's SQS record, when it came from a queue.
pub async fn handle_message(
    aws: Aws,
    body: &str,
    expected: Option<StepName>,
    delivery: Option<&Delivery>,
) -> Result<Outcome, StepError> {
    let task: TaskMessage = match serde_json::from_str(body) {
        Ok(t) => t,
        Err(e) => {
            // Without a valid message there may still be a token to fail the task with.
            let err = StepError::invalid_input(format!("task message: {e}"));
            return match token_of(body) {
                Some(t) => answer(aws.pipeline(), &t, Err(err)).await,
                None => {
                    tracing::error!(error = %err, "dropping a message without a task token");
                    Ok(Outcome::Abandoned)
                }
            };
        }
    };
    if let Some(expected) = expected.filter(|e| *e != task.step) {
        let err = StepError::internal(format!("the {expected} worker received a task for step {}", task.step));
        return answer(aws.pipeline(), &task.task_token, Err(err)).await;
    }
    if let Some(d) = delivery.filter(|d| d.receive_count > 1) {
        tracing::info!(step = %task.step, region = %task.region, receive = d.receive_count, "the message came back: its earlier holder stopped extending it");
    }
    let keeper = delivery.and_then(|d| keep_invisible(aws.pipeline().sqs(), d));
    let token = task.task_token.clone();
    let mut aws = aws.with_role(&task.run.role_name).for_task();
    let store = Store::new(&aws);
    // A step may take what the run's earlier steps established instead of finding it again in the
    // accounts; verify finds everything itself, a bulk run's organization step establishes it, and
    // the join step's run is a template of the runs it starts.
    if !matches!(task.step, StepName::Verify | StepName::Organization | StepName::Join) {
        aws = aws.with_facts(std::sync::Arc::new(crate::pipeline::checkpoint::RunFacts::new(store.clone(), &task.run)));
    }
    // On the heap: a step's future (every region's work at once) outgrows a thread's stack in
    // debug builds, and a tokio worker thread's is 2 MiB.
    let result = if task.step.regional() {
        Box::pin(every_region(&aws, &store, &task)).await
    } else {
        Box::pin(checkpointed(&aws, &store, &task, None)).await
    };
    if let Some(k) = &keeper {
        k.abort();
    }
    match result {
        Ok(Some(result)) => {
            let result =
                result.and_then(|out| serde_json::to_value(out).map_err(|e| StepError::internal(e.to_string())));
            answer(aws.pipeline(), &token, result).await
        }
        // Another worker holds this step; it answers.
        Ok(None) => Ok(Outcome::Abandoned),
        Err(e) => answer(aws.pipeline(), &token, Err(e)).await,
    }
}

fn token_of(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body).ok().and_then(|v| v["taskToken"].as_str().map(str::to_owned))
}

/// A message that reached the step's dead-letter queue: SQS delivered it `maxReceiveCount` times
/// and no worker answered (each one crashed, ran out of time or could not reach Step Functions).
/// Fails the task with `Assure.Internal`, and marks its checkpoint failed, so the run ends now
/// rather than at the task's timeout.
pub async fn fail_dead_letter(aws: Aws, body: &str, delivery: &Delivery) -> Result<Outcome, StepError> {
    let queue = delivery.queue_arn.rsplit(':').next().unwrap_or_default().to_owned();
    let Some(token) = token_of(body) else {
        tracing::error!(%queue, "dropping a dead letter without a task token");
        return Ok(Outcome::Abandoned);
    };
    let task = serde_json::from_str::<TaskMessage>(body).ok();
    let aws = match &task {
        Some(t) => aws.with_role(&t.run.role_name),
        None => aws,
    };
    let what = match &task {
        Some(task) => {
            let store = Store::new(&aws);
            let (regions, place) = if task.step.regional() {
                (task.run.regions.clone(), "every region".to_owned())
            } else {
                (vec![task.region.clone()], task.region.to_string())
            };
            let err = dead_letter_error(&format!("the {} task in {place}", task.step), &queue);
            for region in &regions {
                let key = Store::key(task.run.run_id.as_str(), task.step, region);
                let found = match store.get(&key).await {
                    // A region no attempt claimed has no record; the role may not list the
                    // bucket, so S3 answers its read with AccessDenied, not NoSuchKey
                    // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html).
                    Err(e) if e.name == ErrorName::AccessDenied => None,
                    other => other?,
                };
                if let Some((mut rec, etag)) = found {
                    if rec.status == Status::Running && rec.task == task_digest(&token) {
                        rec.status = Status::Failed;
                        rec.finished_at = Some(now());
                        rec.error = Some(err.clone());
                        store.put(&key, &rec, Expect::Unchanged(etag)).await?;
                    }
                }
            }
            err
        }
        None => dead_letter_error("a task", &queue),
    };
    tracing::error!(%queue, error = %what, "failing a task whose message reached the dead-letter queue");
    answer(aws.pipeline(), &token, Err(what)).await
}

fn dead_letter_error(what: &str, queue: &str) -> StepError {
    StepError::internal(format!(
        "{what} was delivered to its workers the queue's maxReceiveCount times and none answered \
         (each crashed, ran out of time or could not reach Step Functions); the message is in {queue}; \
         see the step function's log, then `assure runs retry`"
    ))
}

/// A regional step's task covers every region of the run (the message names the home region).
/// Each region runs under its own checkpoint, all at once, and the task answers when every region
/// has: a region that fails does not stop the others, whose checkpoints then let a retry of the
/// task skip them. One task per step instead of one per step and region is what keeps a run's
/// calls to the pipeline (queue, checkpoints, Step Functions) from growing with its regions.
async fn every_region(
    aws: &Aws,
    store: &Store,
    task: &TaskMessage,
) -> Result<Option<Result<assure_contract::StepOutput, StepError>>, StepError> {
    let tasks: Vec<TaskMessage> =
        task.run.regions.iter().map(|r| TaskMessage { region: r.clone(), ..task.clone() }).collect();
    let before = if starts_from_discover(task.step) {
        store.before(task.run.run_id.as_str()).await.unwrap_or_else(|e| {
            tracing::warn!(step = %task.step, error = %e, "could not read what discover read; every region reads for itself");
            None
        })
    } else {
        None
    };
    let results = futures::future::join_all(
        tasks.iter().map(|t| checkpointed(aws, store, t, before.as_ref().and_then(|b| b.get(t.region.as_str())))),
    )
    .await;
    let mut outputs = Vec::new();
    let mut failures = Vec::new();
    let mut held_elsewhere = false;
    for (t, result) in tasks.iter().zip(results) {
        match result? {
            Some(Ok(out)) => outputs.push(out),
            Some(Err(e)) => failures.push((t.region.clone(), e)),
            None => held_elsewhere = true,
        }
    }
    if held_elsewhere {
        // Another worker took over at least one region of this task; it answers for the task.
        return Ok(None);
    }
    if !failures.is_empty() {
        return Ok(Some(Err(regions_failed(task.step, &failures, outputs.len()))));
    }
    if task.step == StepName::Discover {
        let read: serde_json::Map<String, Value> =
            outputs.iter().map(|o| (o.region.to_string(), o.snapshot.clone())).collect();
        // Only a saving for the steps after it: without it, each reads for itself.
        if let Err(e) = store.put_before(task.run.run_id.as_str(), &read).await {
            tracing::warn!(error = %e, "could not keep what discover read for the later steps; each will read for itself");
        }
    }
    Ok(Some(Ok(merged(task, outputs))))
}

/// Whether `step` may start from what discover read ([`Known`]): a regional step after discover
/// of a control whose part discover reads.
fn starts_from_discover(step: StepName) -> bool {
    step != StepName::Discover && controls::baseline::owner(step).is_some_and(|c| c.snapshot_key().is_some())
}

/// One error for a task whose regions failed: retryable only if every failure is (retrying the
/// task cannot mend the others), naming each region and its error.
fn regions_failed(step: StepName, failures: &[(assure_contract::Region, StepError)], succeeded: usize) -> StepError {
    let name =
        failures.iter().map(|(_, e)| e.name).find(|n| *n != ErrorName::Retryable).unwrap_or(ErrorName::Retryable);
    let each: Vec<String> = failures.iter().map(|(r, e)| format!("{r}: {}: {}", e.name.as_str(), e.message)).collect();
    StepError::new(
        name,
        format!(
            "{step} failed in {} region(s) ({succeeded} done, kept by their checkpoints): {}",
            failures.len(),
            each.join("; ")
        ),
    )
}

/// The answer for a regional task: every region's changes and evidence, in the run's region
/// order. The snapshots stay in the regions' checkpoints, where rollback reads them; if the whole
/// would pass Step Functions' output limit, the changes go without their before and after values
/// (the checkpoints have them).
fn merged(task: &TaskMessage, outputs: Vec<assure_contract::StepOutput>) -> assure_contract::StepOutput {
    let changed = outputs.iter().filter(|o| !o.changes.is_empty()).count();
    let summaries: Vec<String> = outputs.iter().map(|o| o.summary.clone()).collect();
    let mut out = assure_contract::StepOutput {
        step: task.step,
        region: task.region.clone(),
        summary: format!("{} region(s), {changed} changed: {}", outputs.len(), summaries.join("; ")),
        changes: outputs.iter().flat_map(|o| o.changes.iter().cloned()).collect(),
        evidence: outputs.into_iter().flat_map(|o| o.evidence).collect(),
        snapshot: Value::Null,
    };
    let size = serde_json::to_string(&out).map(|s| s.len()).unwrap_or(0);
    if size > MAX_OUTPUT_BYTES * 3 / 4 {
        for c in &mut out.changes {
            c.before = Value::Null;
            c.after = Value::Null;
        }
        out.summary.push_str(" (changes' before and after values are in the checkpoints)");
    }
    out
}

/// Runs a task under its checkpoint. `Ok(None)` when another worker holds the step (and answers);
/// `Ok(Some(result))` when this worker ran it (or found it done) and must answer; `Err` when the
/// checkpoint store itself failed.
async fn checkpointed(
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

async fn answer(pipeline: &AccountConfig, token: &str, result: Result<Value, StepError>) -> Result<Outcome, StepError> {
    let sfn = pipeline.sfn();
    let result = result.and_then(|output| {
        let text = output.to_string();
        if text.len() > MAX_OUTPUT_BYTES {
            Err(StepError::internal(format!("step output is {} bytes, over Step Functions' 256 KiB", text.len())))
        } else {
            Ok(text)
        }
    });
    let (sent, outcome) = match result {
        Ok(text) => {
            let r = sfn.send_task_success().task_token(token).output(text).send().await;
            (r.map(|_| ()).map_err(|e| gone_or_other(&e)), Outcome::Succeeded)
        }
        Err(e) => {
            let r = sfn
                .send_task_failure()
                .task_token(token)
                .error(e.name.as_str())
                .cause(truncate(&e.message, 32_000))
                .send()
                .await;
            (r.map(|_| ()).map_err(|e| gone_or_other(&e)), Outcome::Failed(e.name))
        }
    };
    match sent {
        Ok(()) => Ok(outcome),
        Err(Answer::Gone(code)) => {
            tracing::warn!(code, "the execution no longer waits for this task");
            Ok(Outcome::Abandoned)
        }
        Err(Answer::Failed(e)) => {
            Err(StepError::new(ErrorName::Retryable, format!("answering Step Functions: {}", e.message)))
        }
    }
}

enum Answer {
    /// The token is no longer awaited: the task timed out, or the execution ended.
    Gone(String),
    Failed(StepError),
}

fn gone_or_other<E>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> Answer
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    match error_code(e) {
        Some(c @ ("TaskTimedOut" | "TaskDoesNotExist" | "InvalidToken")) => Answer::Gone(c.to_owned()),
        _ => Answer::Failed(crate::aws::classify(e, "states:SendTask*")),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Plays Lambda for the functions the pipeline's stack created: every enabled SQS event source
/// mapping in the pipeline's account and region (the step queues and their dead-letter queues) is
/// polled, and its function invoked as Lambda invokes it: its code (the package CloudFormation gave
/// it, `bootstrap` at its root), its execution role's session, its environment, its timeout and
/// memory, the mapping's batch size and `MaximumConcurrency`, and `ReportBatchItemFailures`'
/// partial batch answers. Mappings made later (a stack update) are picked up within seconds.
///
/// At most `concurrency` steps run at once on this machine, and of those at most `org_concurrency`
/// that call AWS Organizations. With an Organizations budget ([`crate::aws::ORGANIZATIONS_RPS_ENV`]),
/// the step binaries pace their Organizations requests together through one pace file, so together
/// they stay under it and none waits while it goes unused.
pub async fn supervise(
    aws: Arc<Aws>,
    concurrency: usize,
    org_concurrency: usize,
    stop: impl std::future::Future<Output = ()>,
) {
    let pace_file = std::env::var_os(crate::aws::ORGANIZATIONS_RPS_ENV)
        .map(|_| std::env::temp_dir().join(format!("assure-worker-{}.organizations-pace", std::process::id())));
    let permits = Permits {
        all: Arc::new(Semaphore::new(concurrency.max(1))),
        organizations: Arc::new(Semaphore::new(org_concurrency.max(1))),
        share: org_concurrency.max(1),
        pace_file: pace_file.clone(),
    };
    let serve = async {
        // Dropping the set (when `stop` ends this) aborts every poller.
        let mut loops = tokio::task::JoinSet::new();
        let mut serving: std::collections::HashSet<String> = Default::default();
        let mut functions: std::collections::HashMap<String, Arc<StepFunction>> = Default::default();
        loop {
            match mappings(&aws).await {
                Ok(found) => {
                    for m in found {
                        if serving.contains(&m.uuid) {
                            continue;
                        }
                        let function = match functions.get(&m.function_arn) {
                            Some(f) => f.clone(),
                            None => match StepFunction::load(&aws, &m, &permits).await {
                                Ok(f) => {
                                    let f = Arc::new(f);
                                    functions.insert(m.function_arn.clone(), f.clone());
                                    f
                                }
                                Err(e) => {
                                    tracing::warn!(function = %m.function_arn, error = %e, "cannot run the function yet");
                                    continue;
                                }
                            },
                        };
                        tracing::info!(queue = %m.queue_arn, function = %m.function_arn, "polling");
                        let task = poll_queue(m.clone(), function, permits.clone());
                        loops.spawn(task);
                        serving.insert(m.uuid.clone());
                    }
                }
                Err(e) => tracing::debug!(error = %e, "listing event source mappings"),
            }
            let again = if serving.is_empty() { Duration::from_millis(500) } else { Duration::from_secs(5) };
            tokio::time::sleep(again).await;
        }
    };
    tokio::select! {
        _ = serve => {}
        _ = stop => {}
    }
    if let Some(f) = pace_file {
        let _ = std::fs::remove_file(f);
    }
}

#[derive(Clone)]
struct Permits {
    all: Arc<Semaphore>,
    organizations: Arc<Semaphore>,
    share: usize,
    /// The file the step binaries pace their Organizations requests through, with a budget.
    pace_file: Option<PathBuf>,
}

/// An SQS event source mapping, as Lambda's ListEventSourceMappings describes it.
#[derive(Clone, Debug)]
struct Mapping {
    uuid: String,
    queue_arn: String,
    function_arn: String,
    batch_size: i32,
    maximum_concurrency: Option<i32>,
    reports_failures: bool,
    /// The function's configuration, as GetFunction's `Configuration`.
    function: Value,
}

/// Every enabled mapping of an SQS queue, in whichever account and region, with its function's
/// configuration, as Lambda's service side sees them (`/assure-api/event-source-mappings`): the
/// pipeline's stack may be in any account of the organization.
async fn mappings(aws: &Aws) -> Result<Vec<Mapping>, StepError> {
    let endpoint =
        aws.endpoint_url().ok_or_else(|| StepError::internal("no local cloud: Lambda runs the functions on AWS"))?;
    let body = local_api(endpoint, "/assure-api/event-source-mappings", &serde_json::json!({}))
        .await
        .map_err(StepError::internal)?;
    let doc: Value = serde_json::from_slice(&body).map_err(|e| StepError::internal(e.to_string()))?;
    let mut out = Vec::new();
    for m in doc["EventSourceMappings"].as_array().into_iter().flatten() {
        let (Some(uuid), Some(source), Some(function)) =
            (m["UUID"].as_str(), m["EventSourceArn"].as_str(), m["FunctionArn"].as_str())
        else {
            continue;
        };
        let state = m["State"].as_str().unwrap_or("Enabled");
        if !source.contains(":sqs:") || (state != "Enabled" && state != "Creating") {
            continue;
        }
        out.push(Mapping {
            uuid: uuid.to_owned(),
            queue_arn: source.to_owned(),
            function_arn: function.to_owned(),
            batch_size: m["BatchSize"].as_i64().map_or(10, |b| b.clamp(1, 10) as i32),
            maximum_concurrency: m["ScalingConfig"]["MaximumConcurrency"].as_i64().map(|c| c as i32),
            reports_failures: m["FunctionResponseTypes"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures")),
            function: m["Function"].clone(),
        });
    }
    Ok(out)
}

/// A function as Lambda runs it: its instances (processes of its package's `bootstrap`), and the
/// step it is configured with (which decides whether it needs an Organizations permit).
struct StepFunction {
    function: crate::lambda_service::Function,
    step: Option<StepName>,
    /// How often the function extends a message's visibility while it works.
    heartbeat: Duration,
    /// The role's session: the function reads its queues with it, as Lambda's pollers do.
    sqs: aws_sdk_sqs::Client,
}

impl StepFunction {
    async fn load(aws: &Aws, mapping: &Mapping, permits: &Permits) -> Result<StepFunction, String> {
        let endpoint = aws.endpoint_url().ok_or("no local cloud: Lambda runs the functions on AWS")?;
        let arn = mapping.function_arn.as_str();
        let config = &mapping.function;
        let role = config["Role"].as_str().ok_or("the function has no role")?;
        let name = config["FunctionName"].as_str().unwrap_or("function").to_owned();
        // As Lambda does: the function's execution role, assumed by the service.
        let creds = function_credentials(endpoint, role, &name).await?;
        let zip = local_api(endpoint, "/assure-api/function-code", &serde_json::json!({"functionArn": arn})).await?;
        let bootstrap = unpack(&zip)?;
        let vars: std::collections::HashMap<String, String> = config["Environment"]["Variables"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        let step = vars.get(assure_contract::STEP_ENV).and_then(|s| StepName::parse(s));
        let mut env = vec![(crate::aws::ORGANIZATIONS_SHARE_ENV.to_owned(), permits.share.to_string())];
        if let Some(f) = &permits.pace_file {
            env.push((crate::aws::ORGANIZATIONS_PACE_FILE_ENV.to_owned(), f.display().to_string()));
        }
        env.extend(vars);
        // The local cloud's knob for tests of liveness: the worker's own heartbeat, when set,
        // replaces the function's (the template's 20 s), so a test can shorten the window.
        if let Ok(every) = std::env::var(HEARTBEAT_ENV) {
            env.retain(|(k, _)| k != HEARTBEAT_ENV);
            env.push((HEARTBEAT_ENV.to_owned(), every));
        }
        // The poller keeps a received message invisible for as long as the function will: its
        // heartbeat's window.
        let heartbeat = env
            .iter()
            .rev()
            .find(|(k, _)| k == HEARTBEAT_ENV)
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .map_or(Duration::from_secs(10), |s| Duration::from_secs_f64(s.max(0.1)));
        env.push(("AWS_ACCESS_KEY_ID".into(), creds.access_key_id.clone()));
        env.push(("AWS_SECRET_ACCESS_KEY".into(), creds.secret_access_key.clone()));
        env.push(("AWS_SESSION_TOKEN".into(), creds.session_token.clone().unwrap_or_default()));
        let timeout = Duration::from_secs(config["Timeout"].as_u64().unwrap_or(3).max(1));
        let function = crate::lambda_service::Function::new(&name, arn, bootstrap, env, timeout)
            .with_memory(config["MemorySize"].as_i64().unwrap_or(128) as i32);
        // The function's region, where its queues are.
        let region: assure_contract::Region =
            arn.split(':').nth(3).unwrap_or_default().parse().map_err(|e: StepError| e.message)?;
        let sqs = aws.pipeline().in_region(&region).with_credentials(&creds).sqs();
        Ok(StepFunction { function, step, heartbeat, sqs })
    }
}

/// The package's `bootstrap`, written once per package (named by its digest) under the temporary
/// directory, executable.
fn unpack(zip: &[u8]) -> Result<PathBuf, String> {
    use sha2::Digest;
    let dir = std::env::temp_dir().join("assure-lambda").join(&hex::encode(sha2::Sha256::digest(zip))[..16]);
    let path = dir.join("bootstrap");
    if path.exists() {
        return Ok(path);
    }
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|e| format!("the package: {e}"))?;
    let mut file = archive.by_name("bootstrap").map_err(|_| "the package has no bootstrap at its root".to_owned())?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| format!("the package: {e}"))?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!("bootstrap.{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

async fn poll_queue(mapping: Mapping, function: Arc<StepFunction>, permits: Permits) {
    let Some(url) =
        (Delivery { queue_arn: mapping.queue_arn.clone(), receipt_handle: String::new(), receive_count: 0 })
            .queue_url()
    else {
        tracing::warn!(queue = %mapping.queue_arn, "not an SQS queue ARN");
        return;
    };
    let region = mapping.queue_arn.split(':').nth(3).unwrap_or_default().to_owned();
    let sqs = function.sqs.clone();
    // MaximumConcurrency: at most this many invocations of this mapping at once.
    let own = Arc::new(Semaphore::new(mapping.maximum_concurrency.unwrap_or(1000).max(1) as usize));
    let every = function.heartbeat;
    loop {
        // Long polling, as Lambda's pollers do: a call waits up to 20 s for a message instead of
        // one call a second per queue. What it receives is invisible for the heartbeat window at
        // once, then extended while held.
        let res = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(mapping.batch_size)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .visibility_timeout(visibility_window(every))
            .wait_time_seconds(20)
            .send()
            .await
            .aws(format!("sqs:ReceiveMessage {}", mapping.queue_arn));
        let msgs = match res {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Received but not yet handed to the function: kept invisible meanwhile, as Lambda keeps a
        // batch it is waiting to invoke, so a wait for a free instance is never taken for a death.
        let next = tokio::time::Instant::now() + every;
        let held: Vec<_> = msgs
            .iter()
            .map(|m| {
                keep_invisible_from(sqs.clone(), url.clone(), m.receipt_handle().unwrap_or_default().to_owned(), next)
            })
            .collect();
        if msgs.is_empty() {
            continue;
        }
        // One invocation per received batch (at most the mapping's BatchSize messages), as Lambda's
        // poller invokes: the function answers for each record.
        let own_permit = own.clone().acquire_owned().await.expect("semaphore open");
        // The Organizations permit first: a step waiting for it holds no general permit.
        let org_permit = if function.step.is_some_and(|s| s.uses_organizations()) {
            Some(permits.organizations.clone().acquire_owned().await.expect("semaphore open"))
        } else {
            None
        };
        let permit = permits.all.clone().acquire_owned().await.expect("semaphore open");
        for keeper in held {
            keeper.abort();
        }
        let sqs = sqs.clone();
        let url = url.clone();
        let function = function.clone();
        let event = sqs_event(&msgs, &mapping.queue_arn, &region);
        let reports_failures = mapping.reports_failures;
        tokio::spawn(async move {
            let _permits = (permit, org_permit, own_permit);
            // Which messages the invocation finished: all of them on success, but those a
            // partial batch response lists as failed (ReportBatchItemFailures); none on an error.
            let failed: Vec<String> = match function.function.invoke(event).await {
                Ok(answer) if reports_failures => {
                    let answer: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
                    answer["batchItemFailures"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                        .collect()
                }
                Ok(_) => Vec::new(),
                Err(e) => {
                    tracing::warn!(function = %function.function.name, error = %e, "invocation failed; its messages return when their visibility runs out");
                    msgs.iter().filter_map(|m| m.message_id().map(str::to_owned)).collect()
                }
            };
            for m in &msgs {
                if failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
                    continue;
                }
                if let Some(h) = m.receipt_handle() {
                    if let Err(e) = sqs.delete_message().queue_url(&url).receipt_handle(h).send().await {
                        tracing::warn!(error = %e, "delete failed; the message will come back");
                    }
                }
            }
        });
    }
}

/// The credentials of a function's execution role, obtained as Lambda obtains them: the service
/// assumes the role, whose trust policy must admit `lambda.amazonaws.com`. The local cloud answers
/// for the service (`POST /assure-api/service-credentials`).
pub async fn function_credentials(
    endpoint: &str,
    role_arn: &str,
    session_name: &str,
) -> Result<crate::aws::SessionCredentials, String> {
    let body = serde_json::json!({"service": "lambda.amazonaws.com", "roleArn": role_arn, "sessionName": session_name});
    let payload = local_api(endpoint, "/assure-api/service-credentials", &body).await?;
    serde_json::from_slice(&payload).map_err(|e| format!("{role_arn}: {e}"))
}

/// POSTs `body` to one of the local cloud's own endpoints (the service side of Lambda it plays);
/// the answer's body, or the error it answered.
async fn local_api(endpoint: &str, path: &str, body: &Value) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt;
    let body = body.to_string();
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("{endpoint}: {e}"))?;
    let req = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .map_err(|_| format!("{path}: the local cloud did not answer within 30 s"))?
        .map_err(|e| e.to_string())?;
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| format!("{path}: no answer"))?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let payload = buf[split + 4..].to_vec();
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!("{path}: {}", String::from_utf8_lossy(&payload).trim()));
    }
    Ok(payload)
}

/// The SQS event Lambda's event source mapping delivers: the batch the poller received.
fn sqs_event(msgs: &[aws_sdk_sqs::types::Message], queue_arn: &str, region: &str) -> String {
    use aws_sdk_sqs::types::MessageSystemAttributeName as A;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis().to_string())
        .unwrap_or_default();
    let records: Vec<Value> = msgs
        .iter()
        .map(|m| {
            let attr = |name: A, default: &str| {
                m.attributes().and_then(|a| a.get(&name)).cloned().unwrap_or_else(|| default.to_owned())
            };
            serde_json::json!({
                "messageId": m.message_id().unwrap_or_default(),
                "receiptHandle": m.receipt_handle().unwrap_or_default(),
                "body": m.body().unwrap_or_default(),
                "attributes": {"ApproximateReceiveCount": attr(A::ApproximateReceiveCount, "1"),
                               "SentTimestamp": attr(A::SentTimestamp, &now),
                               "SenderId": attr(A::SenderId, "states.amazonaws.com"),
                               "ApproximateFirstReceiveTimestamp": attr(A::ApproximateFirstReceiveTimestamp, &now)},
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body().unwrap_or_default(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(name: ErrorName) -> StepError {
        StepError::new(name, "denied")
    }

    #[test]
    fn a_regional_task_is_retryable_only_if_every_failed_region_is() {
        let r = |s: &str| s.parse::<assure_contract::Region>().unwrap();
        let all_retryable = [(r("us-east-1"), err(ErrorName::Retryable)), (r("eu-west-1"), err(ErrorName::Retryable))];
        assert_eq!(regions_failed(StepName::Config, &all_retryable, 2).name, ErrorName::Retryable);
        let mixed = [(r("us-east-1"), err(ErrorName::Retryable)), (r("eu-west-1"), err(ErrorName::AccessDenied))];
        let e = regions_failed(StepName::Config, &mixed, 1);
        assert_eq!(e.name, ErrorName::AccessDenied, "a retry cannot mend an access denial");
        assert!(
            e.message.contains("2 region(s) (1 done") && e.message.contains("eu-west-1: Assure.AccessDenied"),
            "{e}"
        );
        assert!(e.message.contains("us-east-1: Assure.Retryable"), "every region is named: {e}");
    }

    #[test]
    fn a_regional_answer_too_large_for_step_functions_drops_the_changes_values_not_the_changes() {
        let big = Value::String("x".repeat(4_000));
        let region: assure_contract::Region = "us-east-1".parse().unwrap();
        let change = assure_contract::Change {
            account: "111111111111".parse().unwrap(),
            region: region.clone(),
            resource: "config:recorder/default".into(),
            action: "update".into(),
            before: big.clone(),
            after: big,
        };
        let out = |n: usize| assure_contract::StepOutput {
            step: StepName::Config,
            region: region.clone(),
            summary: format!("region {n}"),
            changes: vec![change.clone(); 2],
            evidence: vec![],
            snapshot: serde_json::json!({"large": "snapshot"}),
        };
        let run: assure_contract::RunInput = serde_json::from_value(serde_json::json!({
            "runId": "onboard-111111111111-1", "account": "111111111111", "regions": ["us-east-1"],
            "homeRegion": "us-east-1", "roleName": "AssureExecutionRole",
            "org": {"management": "123456789012", "logging": "222222222222", "security": "333333333333"}
        }))
        .unwrap_or_else(|e| panic!("run input: {e}"));
        let task = TaskMessage {
            task_token: "t".into(),
            step: StepName::Config,
            region: region.clone(),
            run,
            execution: None,
            event: None,
        };
        let small = merged(&task, vec![out(1), out(2)]);
        assert_eq!(small.changes.len(), 4);
        assert!(small.changes.iter().all(|c| c.before.is_string()), "kept whole when small");
        assert!(small.snapshot.is_null(), "snapshots stay in the regions' checkpoints");
        let large = merged(&task, (0..40).map(out).collect());
        assert_eq!(large.changes.len(), 80, "every change is still listed");
        assert!(large.changes.iter().all(|c| c.before.is_null() && c.after.is_null()));
        assert!(serde_json::to_string(&large).unwrap().len() < MAX_OUTPUT_BYTES);
    }
}

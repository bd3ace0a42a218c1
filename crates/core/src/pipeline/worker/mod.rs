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
//! Locally, [`crate::local::event_sources::supervise`] plays Lambda: the event source mapping long-polls every step queue and
//! dead-letter queue and invokes the step's function (a long-lived process of the step binary,
//! through the Runtime API of [`crate::local::lambda_service`]) with an SQS batch event, deleting the
//! message only when the answer does not list it as failed (so a killed instance's message comes
//! back).

use std::time::Duration;

use assure_contract::{ErrorName, StepError, StepName, TaskMessage};
use serde_json::Value;

use crate::aws::{error_code, AccountConfig, Aws};
use crate::controls::{self};
use crate::pipeline::checkpoint::{now, task_digest, Expect, Status, Store};

mod claims;

use claims::checkpointed;

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
pub(crate) fn keep_invisible_from(
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
    // the join and watch steps' run is a template of the runs they start.
    if !matches!(task.step, StepName::Verify | StepName::Organization | StepName::Join | StepName::Watch) {
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

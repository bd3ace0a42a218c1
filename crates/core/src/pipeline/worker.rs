//! The worker protocol. A Task state puts `{taskToken, step, region, run}` on the step's SQS queue
//! (`sqs:sendMessage.waitForTaskToken`); a worker runs the step, sends `SendTaskHeartbeat` while it
//! works, and answers `SendTaskSuccess` with the step's output or `SendTaskFailure` with one of the
//! closed set of error names.
//!
//! On AWS the step binaries are Lambda functions fed by the queue. Locally, [`supervise`] plays
//! Lambda: the event source mapping long-polls every step queue and invokes the step's function
//! (a long-lived process of the step binary, through the Runtime API of [`crate::lambda_service`])
//! with an SQS batch event, deleting the message only when the answer does not list it as failed
//! (so a killed instance's message comes back).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use assure_contract::{ErrorName, StepError, StepName, TaskMessage};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::pipeline::checkpoint::{input_digest, now, task_digest, Expect, Record, Status, Store};
use crate::pipeline::resources::queue_name;

/// Environment variable: seconds between heartbeats (default 10, fractions allowed; tasks time out
/// after 60 without one).
pub const HEARTBEAT_ENV: &str = "ASSURE_HEARTBEAT_SECONDS";

/// Step Functions' limit on a task's output.
const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// What became of one task.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Succeeded,
    Failed(ErrorName),
    /// The execution no longer waits for this token (it timed out or was stopped); nothing to send.
    Abandoned,
}

/// Runs one task message end to end: parse, heartbeat, run the step, answer Step Functions.
/// Errors only when Step Functions could not be answered (the caller should let the message return).
pub async fn handle_message(aws: Aws, body: &str, expected: Option<StepName>) -> Result<Outcome, StepError> {
    let sfn = aws.pipeline().sfn();
    let task: TaskMessage = match serde_json::from_str(body) {
        Ok(t) => t,
        Err(e) => {
            // Without a valid message there may still be a token to fail the task with.
            let token =
                serde_json::from_str::<Value>(body).ok().and_then(|v| v["taskToken"].as_str().map(str::to_owned));
            let err = StepError::invalid_input(format!("task message: {e}"));
            return match token {
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
    let every: f64 = std::env::var(HEARTBEAT_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let token = task.task_token.clone();
    let beat = {
        let sfn = sfn.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(every.max(0.1)));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = sfn.send_task_heartbeat().task_token(&token).send().await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
        })
    };
    let aws = aws.with_role(&task.run.role_name);
    let store = Store::new(&aws);
    let result = checkpointed(&aws, &store, &task).await;
    beat.abort();
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

/// Runs a task under its checkpoint. `Ok(None)` when another worker holds the step (and answers);
/// `Ok(Some(result))` when this worker ran it (or found it done) and must answer; `Err` when the
/// checkpoint store itself failed.
async fn checkpointed(
    aws: &Aws,
    store: &Store,
    task: &TaskMessage,
) -> Result<Option<Result<assure_contract::StepOutput, StepError>>, StepError> {
    let run = &task.run;
    let key = Store::key(run.run_id.as_str(), task.step, &task.region);
    let digest = input_digest(run, task.step, &task.region);
    let me = task_digest(&task.task_token);
    let existing = store.get(&key).await?;
    if let Some((rec, _)) = &existing {
        if rec.status == Status::Completed && rec.input_digest == digest {
            if let Some(out) = resume(aws, task, rec).await? {
                tracing::info!(step = %task.step, region = %task.region, "completed before with the same input; checked, unchanged");
                return Ok(Some(Ok(out)));
            }
        }
        if rec.status == Status::Running && rec.task == me {
            tracing::info!(step = %task.step, region = %task.region, "a duplicate delivery of a task in progress");
            return Ok(None);
        }
    }
    let attempt = existing.as_ref().map_or(1, |(r, _)| r.attempt + 1);
    let worker = format!("{}:{}", std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into()), std::process::id());
    let mut rec = Record {
        run_id: run.run_id.to_string(),
        step: task.step,
        region: task.region.clone(),
        account: run.account.clone(),
        status: Status::Running,
        input_digest: digest,
        attempt,
        task: me,
        worker,
        started_at: now(),
        finished_at: None,
        output: None,
        error: None,
    };
    let expect = match existing {
        Some((_, etag)) => Expect::Unchanged(etag),
        None => Expect::Absent,
    };
    let Some(etag) = store.put(&key, &rec, expect).await? else {
        tracing::info!(step = %task.step, region = %task.region, "another worker claimed this step first");
        return Ok(None);
    };
    tracing::info!(step = %task.step, region = %task.region, account = %run.account, run = %run.run_id, attempt, "step started");
    let result = crate::pipeline::steps::dispatch(aws, task).await;
    match &result {
        Ok(out) => tracing::info!(step = %task.step, region = %task.region, summary = %out.summary, "step succeeded"),
        Err(e) => tracing::warn!(step = %task.step, region = %task.region, error = %e, "step failed"),
    }
    rec.finished_at = Some(now());
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
            let planned = crate::pipeline::steps::dispatch(&aws.planning_copy(), task).await?;
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

/// Local event source mapping: polls every step queue and runs `bin_dir/assure-step-STEP` per
/// message with the message body on stdin. Runs until `stop` resolves.
///
/// At most `concurrency` steps run at once, and of those at most `org_concurrency` that call AWS
/// Organizations (as Lambda's `MaximumConcurrency` bounds each function on AWS). Those step
/// binaries are told how many share the Organizations budget, so together they stay under it.
pub async fn supervise(
    aws: Arc<Aws>,
    bin_dir: PathBuf,
    concurrency: usize,
    org_concurrency: usize,
    stop: impl std::future::Future<Output = ()>,
) {
    let permits = Permits {
        all: Arc::new(Semaphore::new(concurrency.max(1))),
        organizations: Arc::new(Semaphore::new(org_concurrency.max(1))),
        share: org_concurrency.max(1),
        account: aws.pipeline().account.to_string(),
    };
    let mut loops = Vec::new();
    for step in StepName::ALL {
        let aws = aws.clone();
        let bin = bin_dir.join(step.binary());
        let permits = permits.clone();
        loops.push(tokio::spawn(async move { poll_queue(aws, step, bin, permits).await }));
    }
    stop.await;
    for l in loops {
        l.abort();
    }
}

#[derive(Clone)]
struct Permits {
    all: Arc<Semaphore>,
    organizations: Arc<Semaphore>,
    share: usize,
    /// The pipeline's account, passed to the step binaries.
    account: String,
}

async fn poll_queue(aws: Arc<Aws>, step: StepName, bin: PathBuf, permits: Permits) {
    // As Lambda does: the function's execution role, assumed by the service, reads the queue and
    // runs the step.
    let creds = match aws.endpoint_url() {
        Some(endpoint) => loop {
            match function_credentials(endpoint, &permits.account, step).await {
                Ok(c) => break Some(c),
                Err(e) => {
                    tracing::debug!(step = %step, error = %e, "waiting for the step's role");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        },
        None => {
            tracing::warn!(step = %step, "no local cloud: running the step with the worker's own credentials");
            None
        }
    };
    let sqs = match &creds {
        Some(c) => aws.pipeline().with_credentials(c).sqs(),
        None => aws.pipeline().sqs(),
    };
    let name = queue_name(step);
    // The event source mapping is configured with the queue (its URL here) by whoever deploys it.
    let admin = aws.pipeline().sqs();
    let url = loop {
        match admin.get_queue_url().queue_name(&name).send().await {
            Ok(out) => break out.queue_url().unwrap_or_default().to_owned(),
            Err(e) => {
                if error_code(&e).is_none_or(|c| !c.contains("NonExistentQueue")) {
                    tracing::debug!(queue = %name, error = %e, "waiting for the queue");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    tracing::info!(queue = %name, "polling");
    let region = aws.pipeline().region.to_string();
    let queue_arn = format!("arn:aws:sqs:{region}:{}:{name}", permits.account);
    let function = Arc::new(step_function(step, bin, &permits, creds.as_ref(), &region));
    loop {
        let res = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .aws(format!("sqs:ReceiveMessage {name}"));
        let msgs = match res {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for m in msgs {
            // The Organizations permit first: a step waiting for it holds no general permit.
            let org_permit = if step.uses_organizations() {
                Some(permits.organizations.clone().acquire_owned().await.expect("semaphore open"))
            } else {
                None
            };
            let permit = permits.all.clone().acquire_owned().await.expect("semaphore open");
            let sqs = sqs.clone();
            let url = url.clone();
            let function = function.clone();
            let event = sqs_event(&m, &queue_arn, &region);
            tokio::spawn(async move {
                let _permits = (permit, org_permit);
                let id = m.message_id().unwrap_or_default();
                let ok = match function.invoke(event).await {
                    // Partial batch response: the messages it names failed and stay on the queue.
                    Ok(answer) => {
                        let failed: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
                        let failures = failed["batchItemFailures"].as_array().cloned().unwrap_or_default();
                        !failures.iter().any(|f| f["itemIdentifier"] == id)
                    }
                    Err(e) => {
                        tracing::warn!(function = %function.name, error = %e, "invocation failed; the message returns after its visibility timeout");
                        false
                    }
                };
                if ok {
                    if let Some(h) = m.receipt_handle() {
                        if let Err(e) = sqs.delete_message().queue_url(&url).receipt_handle(h).send().await {
                            tracing::warn!(error = %e, "delete failed; the message will come back");
                        }
                    }
                }
            });
        }
    }
}

/// The credentials of a step function's execution role, obtained as Lambda obtains them: the
/// service assumes the role, whose trust policy must admit `lambda.amazonaws.com`. The local cloud
/// answers for the service (`POST /assure-api/service-credentials`).
pub async fn function_credentials(
    endpoint: &str,
    account: &str,
    step: StepName,
) -> Result<crate::aws::SessionCredentials, String> {
    use tokio::io::AsyncReadExt;
    let role = format!("arn:aws:iam::{account}:role/{}", crate::pipeline::resources::step_role_name(step));
    let body = serde_json::json!({"service": "lambda.amazonaws.com", "roleArn": role, "sessionName": step.binary()})
        .to_string();
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("{endpoint}: {e}"))?;
    let req = format!(
        "POST /assure-api/service-credentials HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .map_err(|_| "the local cloud did not answer within 30 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!("{role}: {}", payload.trim()));
    }
    serde_json::from_str(payload).map_err(|e| format!("{role}: {e}"))
}

/// The step's Lambda function as the template defines it: its binary, its role's session, the
/// template's environment, and its 900 s timeout.
fn step_function(
    step: StepName,
    bin: PathBuf,
    permits: &Permits,
    creds: Option<&crate::aws::SessionCredentials>,
    region: &str,
) -> crate::lambda_service::Function {
    let mut env = vec![
        (crate::aws::ORGANIZATIONS_SHARE_ENV.to_owned(), permits.share.to_string()),
        (crate::aws::PIPELINE_ACCOUNT_ENV.to_owned(), permits.account.clone()),
    ];
    if let Some(c) = creds {
        env.push(("AWS_ACCESS_KEY_ID".into(), c.access_key_id.clone()));
        env.push(("AWS_SECRET_ACCESS_KEY".into(), c.secret_access_key.clone()));
        env.push(("AWS_SESSION_TOKEN".into(), c.session_token.clone().unwrap_or_default()));
    }
    let name = step.binary();
    let arn = format!("arn:aws:lambda:{region}:{}:function:{name}", permits.account);
    crate::lambda_service::Function::new(&name, &arn, bin, env, Duration::from_secs(900))
}

/// The SQS event Lambda's event source mapping delivers: a batch of one message.
fn sqs_event(m: &aws_sdk_sqs::types::Message, queue_arn: &str, region: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis().to_string())
        .unwrap_or_default();
    serde_json::json!({"Records": [{
        "messageId": m.message_id().unwrap_or_default(),
        "receiptHandle": m.receipt_handle().unwrap_or_default(),
        "body": m.body().unwrap_or_default(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now, "SenderId": "states.amazonaws.com",
                       "ApproximateFirstReceiveTimestamp": now},
        "messageAttributes": {},
        "md5OfBody": m.md5_of_body().unwrap_or_default(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }]})
    .to_string()
}

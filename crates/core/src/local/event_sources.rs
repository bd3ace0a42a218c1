//! Lambda's event source mappings, played locally: the step queues polled and the step functions
//! invoked with SQS batch events, as Lambda invokes them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use assure_contract::{StepError, StepName};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::aws::{Aws, AwsResultExt};
use crate::pipeline::worker::{keep_invisible_from, visibility_window, Delivery, HEARTBEAT_ENV};

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
    function: super::lambda_service::Function,
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
        let function = super::lambda_service::Function::new(&name, arn, bootstrap, env, timeout)
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
    super::http::request(endpoint, "POST", path, &body.to_string(), Duration::from_secs(30)).await?.ok(path)
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

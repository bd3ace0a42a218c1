//! The local stand-in for AWS Lambda's service side, so the step binaries run locally exactly as
//! they run on Lambda: each function instance is a long-lived process of the step binary, given its
//! role's credentials and `AWS_LAMBDA_RUNTIME_API`, that asks this module's Runtime API for its next
//! invocation and posts the answer (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).
//! The worker's event source mapping invokes a function with an SQS batch event and deletes the
//! messages the answer does not list in `batchItemFailures`
//! (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).
//!
//! The step binaries are the Lambda runtime's client (`steps/`); this is the other end.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How an invocation ended: the function's answer, or its error (an error answer, or the process
/// ended without answering).
pub type Answer = Result<String, String>;

struct Invocation {
    id: String,
    event: String,
    deadline_ms: u128,
    reply: oneshot::Sender<Answer>,
}

/// One execution environment: a process of the function, serving one invocation at a time.
struct Instance {
    invocations: mpsc::Sender<Invocation>,
    alive: Arc<AtomicBool>,
}

/// A function: its binary, its environment (credentials included), and its idle instances.
pub struct Function {
    pub name: String,
    pub arn: String,
    bin: PathBuf,
    env: Vec<(String, String)>,
    timeout: std::time::Duration,
    memory_mb: i32,
    idle: Mutex<Vec<Instance>>,
    next_id: AtomicU64,
}

impl Function {
    pub fn new(
        name: &str,
        arn: &str,
        bin: PathBuf,
        env: Vec<(String, String)>,
        timeout: std::time::Duration,
    ) -> Function {
        Function {
            name: name.to_owned(),
            arn: arn.to_owned(),
            bin,
            env,
            timeout,
            memory_mb: 128,
            idle: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// The function's configured memory, which its processes are told (Lambda's default is 128 MB).
    pub fn with_memory(mut self, memory_mb: i32) -> Function {
        self.memory_mb = memory_mb;
        self
    }

    /// Invokes the function with `event` on an idle instance, or a new one (the caller bounds
    /// concurrency, as reserved concurrency does on Lambda).
    pub async fn invoke(&self, event: String) -> Answer {
        let instance = loop {
            let found = self.idle.lock().expect("idle instances").pop();
            match found {
                Some(i) if i.alive.load(Ordering::SeqCst) => break i,
                Some(_) => continue,
                None => break self.start().await?,
            }
        };
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{n:08}", self.name);
        let deadline_ms = (std::time::SystemTime::now() + self.timeout)
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let (reply, answer) = oneshot::channel();
        if instance.invocations.send(Invocation { id, event, deadline_ms, reply }).await.is_err() {
            return Err(format!("{}: the instance ended before it took the invocation", self.name));
        }
        let result = match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(a)) => a,
            Ok(Err(_)) => Err(format!("{}: the process ended without answering (Runtime.ExitError)", self.name)),
            Err(_) => Err(format!("{}: Task timed out after {} s", self.name, self.timeout.as_secs())),
        };
        if instance.alive.load(Ordering::SeqCst) {
            self.idle.lock().expect("idle instances").push(instance);
        }
        result
    }

    /// A new instance: its Runtime API on a free loopback port, then its process.
    async fn start(&self) -> Result<Instance, String> {
        let listener =
            TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("{}: runtime API: {e}", self.name))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let (tx, rx) = mpsc::channel::<Invocation>(1);
        let alive = Arc::new(AtomicBool::new(true));
        let api = tokio::spawn(runtime_api(listener, rx, self.arn.clone()));
        let child = tokio::process::Command::new(&self.bin)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", self.memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{port}"))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                api.abort();
                return Err(format!("{}: cannot start {}: {e}", self.name, self.bin.display()));
            }
        };
        let flag = alive.clone();
        let name = self.name.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            flag.store(false, Ordering::SeqCst);
            // Its pending invocation, if any, is answered "ended without answering".
            api.abort();
            tracing::debug!(function = %name, ?status, "instance ended");
        });
        Ok(Instance { invocations: tx, alive })
    }
}

struct Api {
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    arn: String,
}

async fn runtime_api(listener: TcpListener, rx: mpsc::Receiver<Invocation>, arn: String) {
    let api = Arc::new(Api { next: tokio::sync::Mutex::new(rx), pending: Mutex::new(HashMap::new()), arn });
    // Connections live in this set: aborting this task drops them, and with them every pending answer.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((sock, _)) => { connections.spawn(serve(sock, api.clone())); }
                Err(e) => { tracing::warn!(error = %e, "runtime API accept"); return; }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One connection: HTTP/1.1 requests, kept alive, as the runtime client sends them.
async fn serve(sock: TcpStream, api: Arc<Api>) {
    let service = hyper::service::service_fn(move |req| handle(api.clone(), req));
    let served =
        hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(sock), service).await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "runtime API connection ended");
    }
}

type Reply = hyper::Response<Full<Bytes>>;

/// One request of the Runtime API. An error closes the connection, as when the instance's
/// invocations end (the function is gone).
async fn handle(api: Arc<Api>, req: hyper::Request<hyper::body::Incoming>) -> Result<Reply, BoxError> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let body = req.into_body().collect().await?.to_bytes();
    let reply = |status: u16, body: &'static [u8]| -> Result<Reply, BoxError> {
        Ok(hyper::Response::builder().status(status).body(Full::new(Bytes::from_static(body)))?)
    };
    let parts: Vec<&str> = path.trim_start_matches("/2018-06-01/runtime/").split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["invocation", "next"]) => {
            let Some(inv) = api.next.lock().await.recv().await else { return Err("the function is gone".into()) };
            api.pending.lock().expect("pending").insert(inv.id.clone(), inv.reply);
            Ok(hyper::Response::builder()
                .status(200)
                .header("Lambda-Runtime-Aws-Request-Id", &inv.id)
                .header("Lambda-Runtime-Deadline-Ms", inv.deadline_ms.to_string())
                .header("Lambda-Runtime-Invoked-Function-Arn", &api.arn)
                .header("Lambda-Runtime-Trace-Id", format!("Root=1-local-{}", inv.id))
                .header("Content-Type", "application/json")
                .body(Full::new(Bytes::from(inv.event)))?)
        }
        ("POST", ["invocation", id, outcome @ ("response" | "error")]) => {
            let pending = api.pending.lock().expect("pending").remove(*id);
            let text = String::from_utf8_lossy(&body).into_owned();
            match pending {
                Some(r) => {
                    let _ = r.send(if *outcome == "response" { Ok(text) } else { Err(text) });
                    reply(202, br#"{"status":"OK"}"#)
                }
                None => reply(400, br#"{"errorType":"InvalidRequestID"}"#),
            }
        }
        ("POST", ["init", "error"]) => {
            tracing::error!(error = %String::from_utf8_lossy(&body), "function init error");
            reply(202, br#"{"status":"OK"}"#)
        }
        _ => reply(404, b"{}"),
    }
}

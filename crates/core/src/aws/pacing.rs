//! Pacing Organizations' requests to the organization's budget, across processes.

//! Clients for every account and region, built once, and the mapping of SDK errors onto assure's
//! closed set of error names.

use std::sync::Arc;

use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use tokio::sync::Mutex;

/// The Organizations request budget for the whole organization, in requests per second. Unset (the
/// default): no pacing beyond the SDK's retries.
pub const ORGANIZATIONS_RPS_ENV: &str = "ASSURE_ORGANIZATIONS_RPS";
/// How many processes share that budget at once (the worker sets it for the step binaries it runs
/// to its bound on concurrent Organizations steps; 1 when unset). Not used with a pace file.
pub const ORGANIZATIONS_SHARE_ENV: &str = "ASSURE_ORGANIZATIONS_SHARE";
/// A file through which processes on one machine pace their Organizations requests together: the
/// whole budget is shared, each request taking the next free slot, so no process waits while the
/// budget goes unused and none can exceed it (the worker sets it for the step binaries it runs).
pub const ORGANIZATIONS_PACE_FILE_ENV: &str = "ASSURE_ORGANIZATIONS_PACE_FILE";

/// Spaces requests at least `interval` apart: across the whole process, or across every process
/// pacing through the same file.
#[derive(Debug)]
pub struct Pacer {
    interval: std::time::Duration,
    next: Mutex<tokio::time::Instant>,
    file: Option<std::path::PathBuf>,
}

impl Pacer {
    pub fn new(per_second: f64) -> Pacer {
        Pacer {
            interval: std::time::Duration::from_secs_f64(1.0 / per_second.max(0.01)),
            next: Mutex::new(tokio::time::Instant::now()),
            file: None,
        }
    }

    /// A pacer shared with every process pacing through `file` (made if missing).
    pub fn shared(per_second: f64, file: std::path::PathBuf) -> Pacer {
        Pacer { file: Some(file), ..Pacer::new(per_second) }
    }

    /// Waits for this request's turn.
    pub async fn wait(&self) {
        if let Some(file) = &self.file {
            let (file, interval) = (file.clone(), self.interval);
            let claimed = tokio::task::spawn_blocking(move || claim_slot(&file, interval)).await;
            match claimed.map_err(std::io::Error::other).and_then(|r| r) {
                Ok(wait) => return tokio::time::sleep(wait).await,
                Err(e) => tracing::warn!(error = %e, "the shared pace file failed; pacing this process alone"),
            }
        }
        let mut next = self.next.lock().await;
        let now = tokio::time::Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(now) + self.interval;
    }
}

/// Takes the next free slot from the pace file (under an exclusive lock: the file holds the next
/// free slot's time, in seconds since the epoch) and answers how long to wait for it.
fn claim_slot(path: &std::path::Path, interval: std::time::Duration) -> std::io::Result<std::time::Duration> {
    use std::io::{Read, Seek, Write};
    let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    file.lock()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let next: f64 = text.trim().parse().unwrap_or(0.0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let slot = next.max(now);
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{:.6}", slot + interval.as_secs_f64())?;
    file.unlock()?;
    Ok(std::time::Duration::from_secs_f64(slot - now))
}

/// This process's Organizations pacer, from the environment (once).
pub(super) fn organizations_pacer() -> Option<Arc<Pacer>> {
    static PACER: std::sync::OnceLock<Option<Arc<Pacer>>> = std::sync::OnceLock::new();
    PACER
        .get_or_init(|| {
            let budget: f64 = std::env::var(ORGANIZATIONS_RPS_ENV).ok()?.parse().ok().filter(|r: &f64| *r > 0.0)?;
            if let Some(file) = std::env::var_os(ORGANIZATIONS_PACE_FILE_ENV).filter(|f| !f.is_empty()) {
                return Some(Arc::new(Pacer::shared(budget, file.into())));
            }
            let share: f64 = std::env::var(ORGANIZATIONS_SHARE_ENV)
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|s: &f64| *s >= 1.0)
                .unwrap_or(1.0);
            Some(Arc::new(Pacer::new(budget / share)))
        })
        .clone()
}

/// An HTTP client whose every request (retries included) first waits for the pacer.
#[derive(Clone, Debug)]
pub(super) struct Paced {
    inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
    pacer: Arc<Pacer>,
}

impl Paced {
    pub(super) fn client(pacer: Arc<Pacer>) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
        use aws_smithy_http_client::tls;
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
            .build_https();
        aws_smithy_runtime_api::client::http::SharedHttpClient::new(Paced { inner, pacer })
    }
}

impl aws_smithy_runtime_api::client::http::HttpClient for Paced {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(PacedConnector {
            inner,
            pacer: self.pacer.clone(),
        })
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: aws_smithy_runtime_api::client::http::SharedHttpConnector,
    pacer: Arc<Pacer>,
}

impl aws_smithy_runtime_api::client::http::HttpConnector for PacedConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        let inner = self.inner.clone();
        let pacer = self.pacer.clone();
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(async move {
            pacer.wait().await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {

    /// Two processes pacing through one file take turns: each request's slot is one interval after
    /// the last one taken, whoever took it.
    #[test]
    fn a_pace_file_gives_each_request_the_next_free_slot() {
        let dir = std::env::temp_dir().join(format!("assure-pace-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pace");
        let second = std::time::Duration::from_secs(1);
        let waits: Vec<f64> = (0..4).map(|_| super::claim_slot(&file, second).unwrap().as_secs_f64()).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        for (i, w) in waits.iter().enumerate() {
            assert!((w - i as f64).abs() < 0.5, "request {i} waits {w:.2} s, not about {i} s: {waits:?}");
        }
    }
}

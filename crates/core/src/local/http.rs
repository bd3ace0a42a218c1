//! One HTTP client for the local cloud's own API (`/assure-api/…`) and its health probe, over
//! hyper: what the CLI, the worker, the tests and the bench send it. Loopback only, no TLS, every
//! request bounded in time.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// The local cloud's response: its status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// The body, or an error naming `path` and carrying the body when the status is not 2xx.
    pub fn ok(self, path: &str) -> Result<Vec<u8>, String> {
        if (200..300).contains(&self.status) {
            Ok(self.body)
        } else {
            Err(format!("{path}: HTTP {}: {}", self.status, String::from_utf8_lossy(&self.body).trim()))
        }
    }
}

/// Sends `method path` with a JSON `body` to `endpoint` (`http://127.0.0.1:PORT`), waiting at most
/// `timeout` for the whole answer.
pub async fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Result<Response, String> {
    let what = format!("{method} {endpoint}{path}");
    tokio::time::timeout(timeout, send(endpoint, method, path, body.to_owned()))
        .await
        .map_err(|_| format!("{what}: the local cloud did not answer within {} s", timeout.as_secs()))?
        .map_err(|e| format!("{what}: {e}"))
}

/// [`request`] for callers outside an async context, or inside one they may not block: the
/// request runs on a thread of its own.
pub fn request_blocking(
    endpoint: &str,
    method: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> Result<Response, String> {
    let (endpoint, method, path, body) = (endpoint.to_owned(), method.to_owned(), path.to_owned(), body.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(request(&endpoint, &method, &path, &body, timeout))
    })
    .join()
    .map_err(|_| "the request's thread panicked".to_owned())?
}

async fn send(
    endpoint: &str,
    method: &str,
    path: &str,
    body: String,
) -> Result<Response, Box<dyn std::error::Error + Send + Sync>> {
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path).header(hyper::header::HOST, addr);
    // Only a body has a type: a presigned URL's signature covers the Content-Type header, and the
    // URL was signed without one.
    if !body.is_empty() {
        req = req.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let req = req.body(Full::new(Bytes::from(body)))?;
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await?.to_bytes().to_vec();
    drop(sender);
    conn.abort();
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot server on loopback that answers `answer` to the first request and hands the
    /// request it read back.
    async fn serve_once(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (endpoint, server)
    }

    #[tokio::test]
    async fn a_request_sends_its_body_and_reads_a_chunked_answer() {
        let (endpoint, server) =
            serve_once("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n")
                .await;
        let answer = request(&endpoint, "POST", "/assure-api/x", "{\"q\":1}", Duration::from_secs(5)).await.unwrap();
        assert_eq!(answer.ok("/assure-api/x").unwrap(), b"{\"a\":1}");
        let sent = server.await.unwrap();
        assert!(sent.starts_with("POST /assure-api/x HTTP/1.1\r\n"), "{sent}");
        assert!(sent.ends_with("{\"q\":1}"), "{sent}");
    }

    /// A presigned URL's signature covers the Content-Type header: a request without a body sends
    /// none, as the URL was signed.
    #[tokio::test]
    async fn a_request_without_a_body_sends_no_content_type() {
        let (endpoint, server) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        let answer = request(&endpoint, "GET", "/b/k?Signature=x%2By", "", Duration::from_secs(5)).await.unwrap();
        assert_eq!(answer.body, b"ok");
        let sent = server.await.unwrap().to_ascii_lowercase();
        assert!(sent.starts_with("get /b/k?signature=x%2by http/1.1\r\n"), "{sent}");
        assert!(!sent.contains("content-type"), "{sent}");
    }

    #[tokio::test]
    async fn an_error_status_names_the_path_and_carries_the_body() {
        let (endpoint, _server) = serve_once("HTTP/1.1 400 Bad Request\r\nContent-Length: 6\r\n\r\nno way").await;
        let answer = request(&endpoint, "GET", "/p", "", Duration::from_secs(5)).await.unwrap();
        assert_eq!(answer.ok("/p").unwrap_err(), "/p: HTTP 400: no way");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_silent_server_times_out_and_blocking_callers_may_call_from_a_runtime() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let err = request_blocking(&endpoint, "GET", "/p", "", Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("did not answer within"), "{err}");
        drop(listener);
    }
}

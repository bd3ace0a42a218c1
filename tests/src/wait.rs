//! Waiting for the local cloud: one helper, bounded, that says what it waited for.

/// What `check` answers once it is `Ok`, asked at once and then every `every`, for at most `bound`.
/// While it is not, `check` says what it sees instead (`Err`), which the panic names when the
/// bound passes: the one way a test waits for something to happen, never a fixed sleep.
pub fn eventually_every<T>(
    bound: std::time::Duration,
    every: std::time::Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let started = std::time::Instant::now();
    loop {
        match check() {
            Ok(done) => return done,
            Err(seen) if started.elapsed() > bound => panic!("{what}: not within {bound:?}; last seen: {seen}"),
            Err(_) => std::thread::sleep(every),
        }
    }
}

/// [`eventually_every`], asked every 200 ms.
pub fn eventually<T>(bound: std::time::Duration, what: &str, check: impl FnMut() -> Result<T, String>) -> T {
    eventually_every(bound, std::time::Duration::from_millis(200), what, check)
}

/// [`eventually`] for a check that awaits (the SDK's calls), asked every 200 ms.
pub async fn eventually_async<T, F>(bound: std::time::Duration, what: &str, mut check: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Result<T, String>>,
{
    let started = std::time::Instant::now();
    loop {
        match check().await {
            Ok(done) => return done,
            Err(seen) if started.elapsed() > bound => panic!("{what}: not within {bound:?}; last seen: {seen}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}

/// What `read` answers once it no longer answers `transitional` (a resource AWS is still making),
/// within `bound` ([`eventually`]).
pub fn settled(bound: std::time::Duration, transitional: &str, mut read: impl FnMut() -> String) -> String {
    eventually(bound, &format!("no longer {transitional}"), || match read() {
        now if now == transitional => Err(now),
        now => Ok(now),
    })
}

//! Waiting out AWS's eventual consistency: roles, registrations and trusted access that
//! services learn of a moment after IAM or Organizations made them.

//! Clients for every account and region, built once, and the mapping of SDK errors onto assure's
//! closed set of error names.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// How services refuse a role IAM has not yet propagated to them (IAM is eventually consistent:
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html): the code, and a
/// part of the message where the code alone also means other things.
const ROLE_PROPAGATING: &[(&str, &str)] = &[
    // CloudTrail CreateTrail/UpdateTrail with a CloudWatch Logs role created a moment ago.
    ("InvalidCloudWatchLogsRoleArnException", ""),
    // Firehose CreateDeliveryStream/UpdateDestination: "Firehose is unable to assume role …".
    ("InvalidArgumentException", "unable to assume role"),
];

/// Whether the service refused a role it cannot use yet, which a few seconds may cure.
pub fn role_propagating(code: &str, message: &str) -> bool {
    ROLE_PROPAGATING.iter().any(|(c, m)| *c == code && message.contains(m))
}

/// How long a call handed a new role keeps being retried while the service cannot use it yet.
const PROPAGATION_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `call` and, while the service refuses its role as not yet usable ([`role_propagating`]),
/// again every second for up to a minute; then returns its last answer. For calls that hand a
/// service a role the same step may just have created. IAM's changes take seconds to reach the
/// services (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency):
/// a retry sooner than a second mostly finds the role still missing, and a backoff that doubles
/// overshoots the moment it is usable by as long as it has waited (a refused attempt is cheap).
pub async fn while_role_propagates<T, E, F, Fut>(call: F) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    while_propagating(role_propagating, call).await
}

tokio::task_local! {
    /// The time the current step has spent waiting for AWS (see [`counting_waits`]).
    static WAITS: std::cell::RefCell<Waits>;
}

/// Wall time during which at least one wait for AWS was under way: waits that overlap (every
/// region's canary looked for at once) count once.
#[derive(Default)]
struct Waits {
    active: usize,
    since: Option<std::time::Instant>,
    total: f64,
}

/// Runs `work` and answers its output with the seconds it spent waiting for AWS inside it: for a
/// change it made to propagate ([`while_propagating`]), or for a delivery on its way
/// ([`wait_for_aws`]). These are waits AWS imposes, which the run's history shows apart from the
/// work (the step's checkpoint record, `waitedSeconds`).
pub async fn counting_waits<F: std::future::Future>(work: F) -> (F::Output, f64) {
    WAITS
        .scope(std::cell::RefCell::new(Waits::default()), async {
            let out = work.await;
            (out, WAITS.with(|w| w.borrow().total))
        })
        .await
}

/// Sleeps `wait`, counted as a wait for AWS by [`counting_waits`] around it (if any).
pub async fn wait_for_aws(wait: std::time::Duration) {
    let _ = WAITS.try_with(|w| {
        let mut w = w.borrow_mut();
        if w.active == 0 {
            w.since = Some(std::time::Instant::now());
        }
        w.active += 1;
    });
    tokio::time::sleep(wait).await;
    let _ = WAITS.try_with(|w| {
        let mut w = w.borrow_mut();
        w.active = w.active.saturating_sub(1);
        if w.active == 0 {
            if let Some(since) = w.since.take() {
                w.total += since.elapsed().as_secs_f64();
            }
        }
    });
}

/// Runs `call` and, while the service refuses it in a way `transient` (code, message) says a
/// change made a moment ago will cure, again every second for up to a minute; then returns its
/// last answer.
pub async fn while_propagating<T, E, F, Fut>(
    transient: impl Fn(&str, &str) -> bool,
    mut call: F,
) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let started = std::time::Instant::now();
    let wait = std::time::Duration::from_secs(1);
    loop {
        match call().await {
            Err(SdkError::ServiceError(e))
                if transient(e.err().code().unwrap_or(""), e.err().message().unwrap_or(""))
                    && started.elapsed() + wait < PROPAGATION_WAIT =>
            {
                wait_for_aws(wait).await;
            }
            other => return other,
        }
    }
}

/// How a service refuses an account it does not yet know as its delegated administrator, or an
/// organization whose trusted access it has not yet learnt of, a moment after Organizations
/// registered or enabled it: the service learns of both through Organizations, not at once. Only
/// for a call the account may make once registered, right after the step has seen (or made) the
/// registration and trusted access in Organizations; a refusal that lasts a minute is reported as
/// it is.
pub fn registration_propagating(code: &str, message: &str) -> bool {
    matches!(code, "AccessDeniedException" | "OrganizationAccessDeniedException")
        || trusted_access_propagating(code, message)
}

/// How a service refuses a call that needs trusted access it has not yet learnt of: Access
/// Analyzer's `ValidationException` naming trusted access, IAM's `ServiceAccessNotEnabledException`.
pub fn trusted_access_propagating(code: &str, message: &str) -> bool {
    code == "ServiceAccessNotEnabledException"
        || (code == "ValidationException" && message.to_ascii_lowercase().contains("trusted access"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::errors::tests::answer;

    #[tokio::test]
    async fn waits_for_aws_are_counted_once_when_they_overlap_and_not_outside_a_count() {
        let ms = std::time::Duration::from_millis;
        let ((), waited) = counting_waits(async {
            wait_for_aws(ms(300)).await;
            // Two at once: 600 ms of waiting, not 1,200.
            futures::join!(wait_for_aws(ms(600)), wait_for_aws(ms(600)));
            // Work that is not waiting for AWS does not count.
            tokio::time::sleep(ms(600)).await;
        })
        .await;
        // A sleep never ends early; the upper bound leaves room for a loaded machine, and is below
        // both the sum of the waits (1.5 s) and the whole (1.5 s).
        assert!((0.9..1.4).contains(&waited), "waited {waited}");
        // Outside a count, a wait is only a sleep.
        wait_for_aws(ms(10)).await;
    }

    #[tokio::test]
    async fn a_call_is_retried_while_its_role_propagates_and_not_for_other_errors() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let out = while_role_propagates(|| async {
            match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 | 1 => Err(answer(400, "InvalidCloudWatchLogsRoleArnException")),
                _ => Ok("created"),
            }
        })
        .await;
        assert_eq!(out.ok(), Some("created"));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let out: Result<(), _> = while_role_propagates(|| async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(answer(400, "TrailAlreadyExistsException"))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "not retried");
    }
}

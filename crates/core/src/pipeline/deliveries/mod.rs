//! Proof of delivery: a control that is configured is not yet a control that works. A canary goes
//! down every path the baseline's records travel, as AWS's own services carry them, and is looked
//! for at its destination:
//!
//! | path | canary | found at |
//! |---|---|---|
//! | `deliveries.cloudtrail` | a read-only management call naming the canary (`logs:DescribeLogGroups`), in each region | the trail's log file in the logging bucket, `AWSLogs/ACCOUNT/CloudTrail/REGION/…` |
//! | `deliveries.config` | `config:DeliverConfigSnapshot`, in each region | the snapshot in the logging bucket, `AWSLogs/ACCOUNT/Config/REGION/…/ConfigSnapshot/…` |
//! | `deliveries.guardduty` | `guardduty:CreateSampleFindings` in the account, in each region | the security account's export, `AWSLogs/SECURITY/GuardDuty/REGION/…` |
//! | `deliveries.access-analyzer` | a role trusting an account outside the organization (no permissions), made and then deleted | the finding in the logging bucket, `access-analyzer/…`, from each region |
//! | `deliveries.alarm` | `cloudwatch:SetAlarmState` ALARM on the root-usage alarm | CloudWatch's own record of publishing to the encrypted topic (alarm history, `Action`); with a notification endpoint configured, its confirmed subscription and SNS's count of notifications delivered to the topic's subscribers (`AWS/SNS`) |
//! | `deliveries.session-manager` | a session on an instance tagged `assure:canary`, ended at once | the session's log in the logging bucket, `session-manager/ACCOUNT/REGION/SESSION.log` |
//!
//! Nothing here reads a service's configuration to decide that it would work: only the canary
//! arriving proves a path. When it does not arrive, the reason is what the service itself reports
//! where AWS reports it (trail status, delivery channel status, publishing destination status,
//! EventBridge's failed invocations, the alarm's history). AWS delivers in its own time (CloudTrail
//! within about 5 minutes, GuardDuty's export within 5 minutes, Config's snapshot within minutes), so
//! a canary not found yet is `pending`, and the caller waits, bounded (the Verify state's retries,
//! `assure verify --deliveries --wait`).

use assure_contract::catalogue::{entry, Entry};
use assure_contract::{AccountId, Evidence, Region, RunInput, StepError, StepName as S};
use futures::future::{join_all, try_join_all};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::controls::names::{ALARM_PREFIX, CONFIG_CHANNEL};

mod found;
use found::*;

pub const CLOUDTRAIL: Entry =
    entry("deliveries.cloudtrail", S::Verify, "All CloudTrail logs are stored in your logging account", None);
pub const CONFIG: Entry = entry("deliveries.config", S::Verify, "Config logs are sent to your Logging account", None);
pub const GUARDDUTY: Entry = entry(
    "deliveries.guardduty",
    S::Verify,
    "All GuardDuty events created within your accounts will be sent to the GuardDuty master",
    None,
);
pub const ACCESS_ANALYZER: Entry = entry(
    "deliveries.access-analyzer",
    S::Verify,
    "all IAM Access Analyzer findings are delivered to the StaxTrail S3 bucket in your logging account",
    None,
);
pub const ALARM: Entry = entry(
    "deliveries.alarm",
    S::Verify,
    "Amazon CloudWatch captures the metric data of resources and enables configuration of alarms against these metrics",
    None,
);
pub const SESSION: Entry = entry(
    "deliveries.session-manager",
    S::Verify,
    "Stax enables auditing and logging of session activity within Session Manager",
    None,
);

/// The delivery paths in the catalogue's terms: a canary down each, found at its destination.
pub const ENTRIES: &[Entry] = &[CLOUDTRAIL, CONFIG, GUARDDUTY, ACCESS_ANALYZER, SESSION, ALARM];

/// The tag that lets the canary start a session on a managed instance: assure never opens a shell
/// on an instance nobody offered it (README, "Proof of delivery").
pub const CANARY_INSTANCE_TAG: &str = "assure:canary";

/// The alarm the canary sets off: its notification is the test AWS documents for an alarm's
/// actions ("SetAlarmState … to test the configuration of the alarm's actions",
/// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html).
pub const CANARY_ALARM: &str = "root-account-usage";
/// The roles whose trust names an account outside the organization, so that IAM Access Analyzer
/// reports them: `assure-delivery-canary-MILLIS`, one per canary (a role made again under the same
/// name with the same trust is the same grant, whose finding would not change, and so sends no
/// event). They have no permissions and live only until their finding is delivered.
pub const CANARY_ROLE_PREFIX: &str = "assure-delivery-canary-";

/// The mutating calls the canaries make: a role made and deleted, a sample finding, an alarm set
/// and put back, a snapshot, a session started and ended. None leaves configuration behind, so
/// call counts that hold a step to "no change" leave them out (the tests', the bench's).
pub const CANARY_CALLS: &[&str] = &[
    "CreateRole",
    "DeleteRole",
    "SetAlarmState",
    "DeliverConfigSnapshot",
    "CreateSampleFindings",
    "StartSession",
    "TerminateSession",
];
/// An account no organization of AWS customers holds: the account ID AWS's documentation uses for
/// its examples (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html).
pub const OUTSIDE_ACCOUNT: &str = "111122223333";

/// One canary: the unique text it carries and when it was sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Canary {
    pub marker: String,
    /// Seconds since the epoch, fractional.
    pub sent_at: f64,
}

impl Canary {
    /// A new canary for `run`, sent now.
    pub fn new(run: &RunInput) -> Canary {
        let now = OffsetDateTime::now_utc();
        let sent_at = now.unix_timestamp_nanos() as f64 / 1e9;
        Canary { marker: format!("assure-canary-{}-{}", run.run_id, now.unix_timestamp_nanos() / 1_000_000), sent_at }
    }

    fn sent(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos((self.sent_at * 1e9) as i128).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Whether an object written at `at` (seconds) can hold the canary. S3 keeps whole seconds, so
    /// a second of slack.
    fn after(&self, at: f64) -> bool {
        at + 1.0 >= self.sent_at
    }

    /// The canary's role in the onboarded account.
    pub fn role(&self) -> String {
        format!("{CANARY_ROLE_PREFIX}{}", (self.sent_at * 1000.0) as u64)
    }

    /// Seconds from the canary to `at`.
    fn seconds_to(&self, at: f64) -> f64 {
        (at - self.sent_at).max(0.0)
    }

    fn took(&self, at: f64) -> String {
        format!("{:.1} s after the canary", self.seconds_to(at))
    }

    /// Arrived at `at`: `detail`, with the time it took.
    fn arrived(&self, at: f64, detail: String) -> State {
        State::Delivered(detail, Some(self.seconds_to(at)))
    }
}

/// What one path's canary met on the way out: refused calls are the path's failure at once.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sent {
    /// (path, region, why the canary could not be sent).
    pub refused: Vec<(String, Region, String)>,
    /// (region, instance, session id) of each canary session, started and ended.
    #[serde(default)]
    pub sessions: Vec<(Region, String, String)>,
}

impl Sent {
    fn refused_for(&self, path: &Entry, region: &Region) -> Option<&str> {
        self.refused.iter().find(|(p, r, _)| p == path.id && r == region).map(|(_, _, why)| why.as_str())
    }
}

/// Sends the canary down every path, in every region of the run. A call AWS refuses does not stop
/// the others: it is that path's failure.
pub async fn send(aws: &Aws, run: &RunInput, canary: &Canary) -> Result<Sent, StepError> {
    let mut sends: Vec<futures::future::BoxFuture<'_, Option<(String, Region, String)>>> = Vec::new();
    for region in &run.regions {
        let target = aws.account(&run.account, region).await?;
        let (t, c, g) = (target.clone(), target.clone(), target);
        let marker = canary.marker.clone();
        sends.push(Box::pin(tagged(&CLOUDTRAIL, region, async move {
            // A read-only management event whose parameters carry the marker: the trail records
            // every management event, read and write (CIS 4.1), and this one changes nothing.
            t.logs()
                .describe_log_groups()
                .log_group_name_prefix(&marker)
                .limit(1)
                .send()
                .await
                .map(|_| ())
                .aws("logs:DescribeLogGroups")
        })));
        sends.push(Box::pin(tagged(&CONFIG, region, async move {
            // The Region's one delivery channel, whatever its name: an account's own is kept.
            let channel = channel_of(&c).await?.map(|ch| ch.name().unwrap_or(CONFIG_CHANNEL).to_owned());
            c.config()
                .deliver_config_snapshot()
                .delivery_channel_name(channel.unwrap_or_else(|| CONFIG_CHANNEL.to_owned()))
                .send()
                .await
                .map(|_| ())
                .aws("config:DeliverConfigSnapshot")
        })));
        sends.push(Box::pin(tagged(&GUARDDUTY, region, async move {
            let detector = detector_of(&g).await?;
            g.guardduty()
                .create_sample_findings()
                .detector_id(&detector)
                .finding_types("Recon:EC2/PortProbeUnprotectedPort")
                .send()
                .await
                .map(|_| ())
                .aws("guardduty:CreateSampleFindings")
        })));
    }
    let home = aws.account(&run.account, &run.home_region).await?;
    let (a, r) = (home.clone(), home);
    let reason = format!("assure delivery canary {}", canary.marker);
    sends.push(Box::pin(tagged(&ALARM, &run.home_region, async move {
        // An alarm already in ALARM is a real one (or a test's that never settled): it is not
        // reset for a test, which would hide it, and a test from ALARM to ALARM notifies nobody.
        let name = format!("{ALARM_PREFIX}{CANARY_ALARM}");
        let found =
            a.cloudwatch().describe_alarms().alarm_names(&name).send().await.aws("cloudwatch:DescribeAlarms")?;
        if let Some(state) = found.metric_alarms().first().and_then(|m| m.state_value()) {
            if *state == aws_sdk_cloudwatch::types::StateValue::Alarm {
                return Err(StepError::new(
                    assure_contract::ErrorName::NotCompliant,
                    format!("{name} is in ALARM: see to it (or set it to OK) and prove again"),
                ));
            }
        }
        a.cloudwatch()
            .set_alarm_state()
            .alarm_name(format!("{ALARM_PREFIX}{CANARY_ALARM}"))
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason(reason)
            .send()
            .await
            .map(|_| ())
            .aws("cloudwatch:SetAlarmState")
    })));
    let role = canary.role();
    sends.push(Box::pin(tagged(&ACCESS_ANALYZER, &run.home_region, async move { make_canary_role(&r, &role).await })));
    let refused: Vec<_> = join_all(sends).await.into_iter().flatten().collect();
    let mut sessions = Vec::new();
    let mut refused = refused;
    for region in &run.regions {
        let target = aws.account(&run.account, region).await?;
        match session(&target).await {
            Ok(Some((instance, id))) => sessions.push((region.clone(), instance, id)),
            Ok(None) => {}
            Err(e) => refused.push((SESSION.id.to_owned(), region.clone(), e.message)),
        }
    }
    Ok(Sent { refused, sessions })
}

/// A session on the first online managed instance tagged [`CANARY_INSTANCE_TAG`], started and
/// ended at once: its agent then uploads the session's log as the instance's role. None where no
/// instance is tagged.
async fn session(target: &AccountConfig) -> Result<Option<(String, String)>, StepError> {
    use aws_sdk_ssm::types::InstanceInformationStringFilter as Filter;
    let ssm = target.ssm();
    let found = ssm
        .describe_instance_information()
        .filters(
            Filter::builder()
                .key("tag-key")
                .values(CANARY_INSTANCE_TAG)
                .build()
                .map_err(|e| StepError::internal(e.to_string()))?,
        )
        .filters(
            Filter::builder()
                .key("PingStatus")
                .values("Online")
                .build()
                .map_err(|e| StepError::internal(e.to_string()))?,
        )
        .send()
        .await
        .aws("ssm:DescribeInstanceInformation")?;
    let Some(instance) = found.instance_information_list().first().and_then(|i| i.instance_id()).map(str::to_owned)
    else {
        return Ok(None);
    };
    let started = ssm.start_session().target(&instance).send().await.aws(format!("ssm:StartSession {instance}"))?;
    let id = started.session_id().unwrap_or_default().to_owned();
    ssm.terminate_session().session_id(&id).send().await.aws(format!("ssm:TerminateSession {id}"))?;
    Ok(Some((instance, id)))
}

/// `work`'s failure as (path, region, why).
async fn tagged(
    path: &Entry,
    region: &Region,
    work: impl std::future::Future<Output = Result<(), StepError>>,
) -> Option<(String, Region, String)> {
    work.await.err().map(|e| (path.id.to_owned(), region.clone(), e.message))
}

async fn detector_of(acct: &AccountConfig) -> Result<String, StepError> {
    let out = acct.guardduty().list_detectors().send().await.aws("guardduty:ListDetectors")?;
    out.detector_ids().first().cloned().ok_or_else(|| {
        StepError::new(assure_contract::ErrorName::NotCompliant, format!("no GuardDuty detector in {}", acct.region))
    })
}

fn canary_trust() -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{OUTSIDE_ACCOUNT}:root")},
                       "Action": "sts:AssumeRole"}]
    })
    .to_string()
}

async fn make_canary_role(acct: &AccountConfig, name: &str) -> Result<(), StepError> {
    let made = acct
        .iam()
        .create_role()
        .role_name(name)
        .assume_role_policy_document(canary_trust())
        .description("assure: proves that IAM Access Analyzer findings reach the logging account; no permissions")
        .max_session_duration(3600)
        .send()
        .await;
    match made {
        Ok(_) => Ok(()),
        // Made by an earlier attempt of this canary.
        Err(e) if error_code(&e) == Some("EntityAlreadyExists") => Ok(()),
        Err(e) => Err(e).aws(format!("iam:CreateRole {name}")),
    }
}

/// Removes every canary role in the account, this canary's and any an interrupted one left (their
/// findings are then resolved).
pub async fn clean_up(aws: &Aws, run: &RunInput) -> Result<(), StepError> {
    let home = aws.account(&run.account, &run.home_region).await?;
    let iam = home.iam();
    let mut names = Vec::new();
    let mut pages = iam.list_roles().into_paginator().send();
    while let Some(page) = pages.next().await {
        for r in page.aws("iam:ListRoles")?.roles() {
            if r.role_name().starts_with(CANARY_ROLE_PREFIX) {
                names.push(r.role_name().to_owned());
            }
        }
    }
    for name in names {
        match iam.delete_role().role_name(&name).send().await {
            Ok(_) => {}
            Err(e) if error_code(&e) == Some("NoSuchEntity") => {}
            Err(e) => return Err(e).aws(format!("iam:DeleteRole {name}")),
        }
    }
    Ok(())
}

/// Looks for the canary at every destination: one piece of evidence per path and region, passed
/// when it arrived (naming the object and the time it took), failed when the service reports why
/// it could not deliver or the canary could not be sent, pending otherwise.
pub async fn find(aws: &Aws, run: &RunInput, canary: &Canary, sent: &Sent) -> Result<Vec<Evidence>, StepError> {
    let logging = aws.account(&run.org.logging, &run.home_region).await?;
    let bucket = run.logging_bucket();
    let mut regional = Vec::new();
    for region in &run.regions {
        let target = aws.account(&run.account, region).await?;
        let security = aws.account(&run.org.security, region).await?;
        let (logging, bucket) = (&logging, &bucket);
        regional.push(async move {
            let (t, c, g, a) = futures::join!(
                trail(&target, &run.home_region, logging, canary, sent),
                config(&target, logging, canary, sent),
                guardduty(&target, &security, logging, canary, sent),
                analyzer(run, &security, logging, bucket, canary, sent),
            );
            Ok::<_, StepError>(vec![t?, c?, g?, a?])
        });
    }
    let home = aws.account(&run.account, &run.home_region).await?;
    let mut logs = Vec::new();
    for region in &run.regions {
        let target = aws.account(&run.account, region).await?;
        let (logging, bucket) = (&logging, &bucket);
        logs.push(async move { session_log(&target, logging, bucket, canary, sent).await });
    }
    let (found, alarm, logs) =
        futures::join!(try_join_all(regional), alarm(run, &home, canary, sent), try_join_all(logs));
    let mut out: Vec<Evidence> = found?.concat();
    out.push(alarm?);
    out.extend(logs?.into_iter().flatten());
    Ok(out)
}

fn evidence(acct: &AccountConfig, path: &Entry, resource: impl Into<String>, state: State) -> Evidence {
    evidence_of(&acct.account, &acct.region, path, resource, state)
}

fn evidence_of(
    account: &AccountId,
    region: &Region,
    path: &Entry,
    resource: impl Into<String>,
    state: State,
) -> Evidence {
    let (passed, pending, detail, took) = match state {
        State::Delivered(d, took) => (true, false, d, took),
        State::Refused(d) => (false, false, d, None),
        State::Waiting(d) => (false, true, d, None),
    };
    let mut e = Evidence::new(path, account.clone(), region.clone(), resource, passed, detail).pending_if(pending);
    e.took_seconds = took;
    e
}

enum State {
    /// Arrived: what proves it, and the seconds from the canary (where the service timestamps it).
    Delivered(String, Option<f64>),
    Refused(String),
    Waiting(String),
}

/// Gives the run's canary up: its role removed, the test alarm back to OK if the test set it.
pub async fn abandon(aws: &Aws, run: &RunInput) -> Result<(), StepError> {
    clean_up(aws, run).await?;
    let home = aws.account(&run.account, &run.home_region).await?;
    let name = format!("{ALARM_PREFIX}{CANARY_ALARM}");
    let found = home.cloudwatch().describe_alarms().alarm_names(&name).send().await.aws("cloudwatch:DescribeAlarms")?;
    let tested = found.metric_alarms().first().is_some_and(|m| {
        m.state_reason().is_some_and(|r| r.starts_with("assure delivery canary"))
            && m.state_value() == Some(&aws_sdk_cloudwatch::types::StateValue::Alarm)
    });
    if tested {
        settle_alarm(aws, run).await?;
    }
    Ok(())
}

/// Puts the canary alarm back to OK once its notification went out; its next evaluation of the
/// metric decides its state from then on.
pub async fn settle_alarm(aws: &Aws, run: &RunInput) -> Result<(), StepError> {
    let home = aws.account(&run.account, &run.home_region).await?;
    home.cloudwatch()
        .set_alarm_state()
        .alarm_name(format!("{ALARM_PREFIX}{CANARY_ALARM}"))
        .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
        .state_reason("assure delivery canary: notification proven")
        .send()
        .await
        .map(|_| ())
        .aws("cloudwatch:SetAlarmState")
}

/// The controls whose evidence is a service's report of its last delivery, by the path whose
/// canary refreshes that report.
const REPORTED_BY: &[(&str, &Entry)] = &[
    ("cloudtrail.to-logging-account", &CLOUDTRAIL),
    ("config.to-logging-account", &CONFIG),
    ("guardduty.findings-exported", &GUARDDUTY),
];

/// Whether the canary can go: no control waits for AWS to finish making it, and none fails but on
/// a service's report of its last delivery (which may predate a repair; see `await_fresh_status`).
pub fn ready(controls: &[Evidence]) -> bool {
    controls
        .iter()
        .filter(|e| !e.passed)
        .all(|e| !e.pending && REPORTED_BY.iter().any(|(control, _)| *control == e.control))
}

/// A control failing on a service's report of its last delivery while that path's canary is still
/// on its way is pending, not failed: the report may predate a repair the run has just made (a
/// trail's `LatestDeliveryError` stays until a delivery succeeds), and the canary's delivery, or
/// its failure, settles it.
pub fn await_fresh_status(controls: &mut [Evidence], proofs: &[Evidence]) {
    for e in controls.iter_mut().filter(|e| !e.passed && !e.pending) {
        let Some((_, path)) = REPORTED_BY.iter().find(|(control, _)| *control == e.control) else { continue };
        if proofs
            .iter()
            .any(|p| p.control == path.id && p.pending && (p.region == e.region || path.id == CLOUDTRAIL.id))
        {
            e.pending = true;
            e.detail = format!("{} (perhaps from before a repair: the delivery canary settles it)", e.detail);
        }
    }
}

/// How long one attempt of the Verify step looks for its canary before leaving the wait to the
/// state machine's retries.
const IN_STEP_WAIT: std::time::Duration = std::time::Duration::from_secs(12);

/// What the Verify step keeps between its attempts: the run's one canary and what refused it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    canary: Canary,
    sent: Sent,
}

fn record_key(run: &RunInput) -> String {
    format!("deliveries/{}/{}.json", run.account, run.run_id)
}

/// The Verify step's proof of delivery: the run's canary is sent once (the first attempt records
/// it in the checkpoint bucket; later attempts, and a retried run, look for the same one), then
/// looked for. Once every path has delivered or failed, the canary role goes and the alarm is put
/// back; while any is on its way the evidence is pending and the Verify state tries again, bounded.
pub async fn prove(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    use crate::pipeline::checkpoint::{Expect, Store};

    let store = Store::new(aws);
    let key = record_key(run);
    let record = match store.get_json::<Record>(&key).await? {
        Some((record, _)) => record,
        None => {
            let canary = Canary::new(run);
            let sent = send(aws, run, &canary).await?;
            let record = Record { canary, sent };
            match store.put_json(&key, &record, Expect::Absent).await {
                Ok(_) => record,
                // Another attempt recorded its canary first: look for that one.
                Err(_) => store.get_json::<Record>(&key).await?.map(|(r, _)| r).unwrap_or(record),
            }
        }
    };
    // A short wait in the function first: what arrives in seconds (the local cloud, an alarm's
    // notification or a snapshot on AWS) then costs no second attempt of the whole verify, whose
    // reads of every control would be repeated; what takes minutes is waited for by the state
    // machine, for free.
    let found = look_until(aws, run, &record.canary, &record.sent, IN_STEP_WAIT, |_| {}).await?;
    settle(aws, run, &found).await?;
    Ok(found)
}

/// Looks for the canary until nothing is on its way or `bound` has passed, pausing a second, then
/// half as long again each time, up to 15 s; `progress` hears every look that leaves some pending.
pub async fn look_until(
    aws: &Aws,
    run: &RunInput,
    canary: &Canary,
    sent: &Sent,
    bound: std::time::Duration,
    mut progress: impl FnMut(&[Evidence]),
) -> Result<Vec<Evidence>, StepError> {
    let deadline = std::time::Instant::now() + bound;
    let mut pause = std::time::Duration::from_secs(1);
    loop {
        let found = find(aws, run, canary, sent).await?;
        if !found.iter().any(|e| e.pending) || std::time::Instant::now() >= deadline {
            return Ok(found);
        }
        progress(&found);
        crate::aws::wait_for_aws(pause.min(deadline.saturating_duration_since(std::time::Instant::now()))).await;
        pause = (pause * 3 / 2).min(std::time::Duration::from_secs(15));
    }
}

/// Once nothing is on its way: the canary role removed, the alarm back to OK.
pub async fn settle(aws: &Aws, run: &RunInput, found: &[Evidence]) -> Result<(), StepError> {
    if found.iter().any(|e| e.pending) {
        return Ok(());
    }
    clean_up(aws, run).await?;
    // The test alarm back to OK, whether its notification went out or not (not when the test was
    // refused: the alarm was then left as it was).
    if found.iter().any(|e| e.control == ALARM.id && (e.passed || !e.detail.starts_with("the alarm test was refused")))
    {
        settle_alarm(aws, run).await?;
    }
    Ok(())
}

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

use std::io::Read;

use assure_contract::{AccountId, Evidence, Notify, Region, RunInput, StepError};
use futures::future::{join_all, try_join_all};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::controls::names::{ALARM_PREFIX, ALARM_TOPIC, CONFIG_CHANNEL, FINDINGS, TRAIL};

pub const CLOUDTRAIL: &str = "deliveries.cloudtrail";
pub const CONFIG: &str = "deliveries.config";
pub const GUARDDUTY: &str = "deliveries.guardduty";
pub const ACCESS_ANALYZER: &str = "deliveries.access-analyzer";
pub const ALARM: &str = "deliveries.alarm";
pub const SESSION: &str = "deliveries.session-manager";

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
    fn refused_for(&self, path: &str, region: &Region) -> Option<&str> {
        self.refused.iter().find(|(p, r, _)| p == path && r == region).map(|(_, _, why)| why.as_str())
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
        sends.push(Box::pin(tagged(CLOUDTRAIL, region, async move {
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
        sends.push(Box::pin(tagged(CONFIG, region, async move {
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
        sends.push(Box::pin(tagged(GUARDDUTY, region, async move {
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
    sends.push(Box::pin(tagged(ALARM, &run.home_region, async move {
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
    sends.push(Box::pin(tagged(ACCESS_ANALYZER, &run.home_region, async move { make_canary_role(&r, &role).await })));
    let refused: Vec<_> = join_all(sends).await.into_iter().flatten().collect();
    let mut sessions = Vec::new();
    let mut refused = refused;
    for region in &run.regions {
        let target = aws.account(&run.account, region).await?;
        match session(&target).await {
            Ok(Some((instance, id))) => sessions.push((region.clone(), instance, id)),
            Ok(None) => {}
            Err(e) => refused.push((SESSION.to_owned(), region.clone(), e.message)),
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
    path: &'static str,
    region: &Region,
    work: impl std::future::Future<Output = Result<(), StepError>>,
) -> Option<(String, Region, String)> {
    work.await.err().map(|e| (path.to_owned(), region.clone(), e.message))
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

/// The canary session's log in the logging bucket, where the session-manager step's preferences
/// send it (`session-manager/ACCOUNT/REGION/SESSION.log`).
async fn session_log(
    target: &AccountConfig,
    logging: &AccountConfig,
    bucket: &str,
    canary: &Canary,
    sent: &Sent,
) -> Result<Option<Evidence>, StepError> {
    let region = &target.region;
    if let Some(why) = sent.refused_for(SESSION, region) {
        let state = State::Refused(format!("the canary session was refused: {why}"));
        return Ok(Some(evidence(target, SESSION, format!("ssm:{region}:session"), state)));
    }
    let Some((_, instance, id)) = sent.sessions.iter().find(|(r, _, _)| r == region) else { return Ok(None) };
    let key = format!("session-manager/{}/{region}/{id}.log", target.account);
    let resource = format!("s3://{bucket}/{key}");
    match logging.s3().head_object().bucket(bucket).key(&key).send().await {
        Ok(o) => {
            let at = o.last_modified().map(|t| t.as_secs_f64()).unwrap_or(canary.sent_at);
            let state = canary.arrived(at, format!("session {id} on {instance}, {}", canary.took(at)));
            return Ok(Some(evidence(target, SESSION, resource, state)));
        }
        Err(e) if error_code(&e) == Some("NotFound") || error_code(&e) == Some("NoSuchKey") => {}
        Err(e) => return Err(e).aws(format!("s3:HeadObject {bucket}/{key}")),
    }
    // Session Manager marks a session it could not log (the bucket's encryption unreadable, the
    // session key unusable) Failed.
    let history = target
        .ssm()
        .describe_sessions()
        .state(aws_sdk_ssm::types::SessionState::History)
        .send()
        .await
        .aws("ssm:DescribeSessions")?;
    let failed = history.sessions().iter().find(|s| {
        s.session_id() == Some(id.as_str()) && s.status() == Some(&aws_sdk_ssm::types::SessionStatus::Failed)
    });
    let state = match failed {
        Some(s) => State::Refused(format!(
            "Session Manager reports session {id} on {instance} Failed{}",
            s.details().map(|d| format!(": {d}")).unwrap_or_default()
        )),
        None => waiting(canary, &format!("the log of session {id} on {instance}")),
    };
    Ok(Some(evidence(target, SESSION, resource, state)))
}

fn evidence(acct: &AccountConfig, path: &str, resource: impl Into<String>, state: State) -> Evidence {
    evidence_of(&acct.account, &acct.region, path, resource, state)
}

fn evidence_of(
    account: &AccountId,
    region: &Region,
    path: &str,
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

/// The objects under `prefix` written since the canary: (key, seconds).
async fn written_since(
    logging: &AccountConfig,
    bucket: &str,
    prefix: &str,
    start_after: Option<String>,
    canary: &Canary,
) -> Result<Vec<(String, f64)>, StepError> {
    let mut pages = logging
        .s3()
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .set_start_after(start_after)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        for o in page.aws(format!("s3:ListBucket {bucket}/{prefix}"))?.contents() {
            let at = o.last_modified().map(|t| t.as_secs_f64()).unwrap_or_default();
            if canary.after(at) {
                out.push((o.key().unwrap_or_default().to_owned(), at));
            }
        }
    }
    Ok(out)
}

/// An object's text, gunzipped when it is gzip.
async fn text_of(logging: &AccountConfig, bucket: &str, key: &str) -> Result<String, StepError> {
    let out =
        logging.s3().get_object().bucket(bucket).key(key).send().await.aws(format!("s3:GetObject {bucket}/{key}"))?;
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| StepError::internal(format!("s3:GetObject {bucket}/{key}: {e}")))?
        .into_bytes();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .map_err(|e| StepError::internal(format!("{bucket}/{key} is not gzip text: {e}")))?;
        Ok(text)
    } else {
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The day folders from the canary's day to today, as `fmt` writes them.
fn days(canary: &Canary, fmt: impl Fn(OffsetDateTime) -> String) -> Vec<String> {
    let mut day = canary.sent();
    let today = OffsetDateTime::now_utc();
    let mut out = vec![fmt(day)];
    while day.date() < today.date() {
        day += time::Duration::days(1);
        out.push(fmt(day));
    }
    out
}

/// A day as CloudTrail, GuardDuty and Firehose name its folder: `YYYY/MM/DD`.
fn ymd(d: OffsetDateTime) -> String {
    format!("{:04}/{:02}/{:02}", d.year(), d.month() as u8, d.day())
}

/// The first object under any of `prefixes` written since the canary whose text `holds`.
async fn first_holding(
    logging: &AccountConfig,
    bucket: &str,
    prefixes: &[String],
    canary: &Canary,
    holds: impl Fn(&str) -> bool,
) -> Result<Option<(String, f64)>, StepError> {
    for prefix in prefixes {
        for (key, at) in written_since(logging, bucket, prefix, None, canary).await? {
            if holds(&text_of(logging, bucket, &key).await?) {
                return Ok(Some((key, at)));
            }
        }
    }
    Ok(None)
}

/// The JSON documents of a delivered object, one after another: one per line (GuardDuty's
/// `.jsonl`) or back to back with no delimiter (Firehose's default, "concatenates data without
/// any delimiters", https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-new-line-delimiter.html).
fn documents(text: &str) -> impl Iterator<Item = serde_json::Value> + '_ {
    serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>().map_while(Result::ok)
}

fn waiting(canary: &Canary, what: &str) -> State {
    let waited = OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9 - canary.sent_at;
    State::Waiting(format!("{what} not delivered yet ({waited:.0} s since the canary)"))
}

async fn trail(
    target: &AccountConfig,
    home: &Region,
    logging: &AccountConfig,
    canary: &Canary,
    sent: &Sent,
) -> Result<Evidence, StepError> {
    let region = &target.region;
    // The cloudtrail step makes the trail in the run's home Region.
    let arn = format!("arn:aws:cloudtrail:{home}:{}:trail/{TRAIL}", target.account);
    if let Some(why) = sent.refused_for(CLOUDTRAIL, region) {
        return Ok(evidence(target, CLOUDTRAIL, arn, State::Refused(format!("the canary call was refused: {why}"))));
    }
    // The trail by its ARN: from any Region, a multi-Region trail's shadow answers for it.
    let found = target.cloudtrail().get_trail().name(&arn).send().await.aws(format!("cloudtrail:GetTrail {arn}"))?;
    let Some(t) = found.trail() else {
        return Ok(evidence(target, CLOUDTRAIL, arn, State::Refused("no assure trail".into())));
    };
    let bucket = t.s3_bucket_name().unwrap_or_default().to_owned();
    let prefix = folder(t.s3_key_prefix());
    let account = &target.account;
    let prefixes = days(canary, |d| format!("{prefix}AWSLogs/{account}/CloudTrail/{region}/{}/", ymd(d)));
    let marker = canary.marker.as_str();
    if let Some((key, at)) = first_holding(logging, &bucket, &prefixes, canary, |text| text.contains(marker)).await? {
        return Ok(evidence(target, CLOUDTRAIL, format!("s3://{bucket}/{key}"), canary.arrived(at, canary.took(at))));
    }
    let status = target
        .cloudtrail()
        .get_trail_status()
        .name(&arn)
        .send()
        .await
        .aws(format!("cloudtrail:GetTrailStatus {arn}"))?;
    let attempted = status.latest_delivery_attempt_time().and_then(parse_time).is_some_and(|at| canary.after(at));
    // Only an attempt since the canary says why it is missing: an older error may be one the run
    // has just repaired, which the next delivery clears.
    let state = match status.latest_delivery_error().filter(|e| !e.is_empty()) {
        Some(error) if attempted => {
            State::Refused(format!("CloudTrail reports LatestDeliveryError {error} delivering to s3://{bucket}"))
        }
        _ => waiting(canary, "the trail's log file"),
    };
    Ok(evidence(target, CLOUDTRAIL, arn, state))
}

/// A delivery's key prefix as the folder the service writes under: `PREFIX/`, or nothing.
fn folder(prefix: Option<&str>) -> String {
    match prefix.map(|p| p.trim_matches('/')) {
        Some(p) if !p.is_empty() => format!("{p}/"),
        _ => String::new(),
    }
}

/// GetTrailStatus writes attempt times as text (`2026-12-06T21:00:00Z` or epoch seconds).
fn parse_time(text: &str) -> Option<f64> {
    if let Ok(secs) = text.parse::<f64>() {
        return Some(secs);
    }
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
}

/// The home Region of the assure trail (the run's home, where the trail step made it).
/// The Region's delivery channel (Config allows one).
async fn channel_of(acct: &AccountConfig) -> Result<Option<aws_sdk_config::types::DeliveryChannel>, StepError> {
    let out = acct.config().describe_delivery_channels().send().await.aws("config:DescribeDeliveryChannels")?;
    Ok(out.delivery_channels().first().cloned())
}

async fn config(
    target: &AccountConfig,
    logging: &AccountConfig,
    canary: &Canary,
    sent: &Sent,
) -> Result<Evidence, StepError> {
    let region = &target.region;
    let resource = format!("config:{region}:{}:delivery-channel", target.account);
    if let Some(why) = sent.refused_for(CONFIG, region) {
        return Ok(evidence(target, CONFIG, resource, State::Refused(format!("the snapshot was refused: {why}"))));
    }
    let Some(channel) = channel_of(target).await? else {
        return Ok(evidence(target, CONFIG, resource, State::Refused("no delivery channel".into())));
    };
    let bucket = channel.s3_bucket_name().unwrap_or_default().to_owned();
    let prefix = folder(channel.s3_key_prefix());
    let account = &target.account;
    // Config writes its dates unpadded (`2016/6/2`; Config guide, "Viewing configuration snapshots").
    let prefixes = days(canary, |d| {
        format!(
            "{prefix}AWSLogs/{account}/Config/{region}/{}/{}/{}/ConfigSnapshot/",
            d.year(),
            d.month() as u8,
            d.day()
        )
    });
    for p in &prefixes {
        if let Some((key, at)) = written_since(logging, &bucket, p, None, canary).await?.into_iter().next() {
            return Ok(evidence(target, CONFIG, format!("s3://{bucket}/{key}"), canary.arrived(at, canary.took(at))));
        }
    }
    let status = target
        .config()
        .describe_delivery_channel_status()
        .delivery_channel_names(channel.name().unwrap_or(CONFIG_CHANNEL))
        .send()
        .await
        .aws("config:DescribeDeliveryChannelStatus")?;
    let info = status.delivery_channels_status().first().and_then(|s| s.config_snapshot_delivery_info());
    let failed = info.filter(|i| {
        i.last_status().map(|s| s.as_str()) == Some("Failure")
            && i.last_attempt_time().is_some_and(|t| canary.after(t.as_secs_f64()))
    });
    let state = match failed {
        Some(i) => State::Refused(format!(
            "Config reports the snapshot's delivery to s3://{bucket} failed: {} {}",
            i.last_error_code().unwrap_or_default(),
            i.last_error_message().unwrap_or_default()
        )),
        None => waiting(canary, "the configuration snapshot"),
    };
    Ok(evidence(target, CONFIG, resource, state))
}

async fn guardduty(
    target: &AccountConfig,
    security: &AccountConfig,
    logging: &AccountConfig,
    canary: &Canary,
    sent: &Sent,
) -> Result<Evidence, StepError> {
    let region = &target.region;
    let resource = format!("guardduty:{region}:{}:sample-findings", target.account);
    if let Some(why) = sent.refused_for(GUARDDUTY, region) {
        return Ok(evidence(
            target,
            GUARDDUTY,
            resource,
            State::Refused(format!("the sample findings were refused: {why}")),
        ));
    }
    // The security account, the organization's GuardDuty administrator, exports every member's
    // findings (GuardDuty guide, "Exporting generated findings to Amazon S3").
    let detector = detector_of(security).await?;
    let destinations = security
        .guardduty()
        .list_publishing_destinations()
        .detector_id(&detector)
        .send()
        .await
        .aws("guardduty:ListPublishingDestinations")?;
    let Some(id) = destinations.destinations().first().and_then(|d| d.destination_id()).map(str::to_owned) else {
        return Ok(evidence(
            target,
            GUARDDUTY,
            resource,
            State::Refused(format!("the security account {} exports no findings in {region}", security.account)),
        ));
    };
    let d = security
        .guardduty()
        .describe_publishing_destination()
        .detector_id(&detector)
        .destination_id(&id)
        .send()
        .await
        .aws("guardduty:DescribePublishingDestination")?;
    let arn = d.destination_properties().and_then(|p| p.destination_arn()).unwrap_or_default();
    let (bucket, prefix) = arn
        .trim_start_matches("arn:aws:s3:::")
        .split_once('/')
        .unwrap_or((arn.trim_start_matches("arn:aws:s3:::"), ""));
    let prefix = folder(Some(prefix));
    let admin = &security.account;
    let prefixes = days(canary, |d| format!("{prefix}AWSLogs/{admin}/GuardDuty/{region}/{}/", ymd(d)));
    let account = target.account.to_string();
    let holds = |text: &str| {
        documents(text).any(|f| f["accountId"] == account.as_str() && f["service"]["additionalInfo"]["sample"] == true)
    };
    if let Some((key, at)) = first_holding(logging, bucket, &prefixes, canary, holds).await? {
        return Ok(evidence(target, GUARDDUTY, format!("s3://{bucket}/{key}"), canary.arrived(at, canary.took(at))));
    }
    let state = match d.status().map(|s| s.as_str()).unwrap_or_default() {
        "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY" => State::Refused(format!(
            "GuardDuty reports the security account's destination {arn} as UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
        )),
        _ => waiting(canary, "the sample finding"),
    };
    Ok(evidence(target, GUARDDUTY, resource, state))
}

async fn analyzer(
    run: &RunInput,
    security: &AccountConfig,
    logging: &AccountConfig,
    bucket: &str,
    canary: &Canary,
    sent: &Sent,
) -> Result<Evidence, StepError> {
    let region = &security.region;
    let role = format!("arn:aws:iam::{}:role/{}", run.account, canary.role());
    if let Some(why) = sent.refused_for(ACCESS_ANALYZER, &run.home_region) {
        return Ok(evidence_of(
            &run.account,
            region,
            ACCESS_ANALYZER,
            role,
            State::Refused(format!("the canary role was refused: {why}")),
        ));
    }
    let prefixes = days(canary, |d| format!("access-analyzer/{}/", ymd(d)));
    let holds = |text: &str| {
        documents(text).any(|e| e["detail"]["resource"] == role.as_str() && e["detail"]["region"] == region.as_str())
    };
    if let Some((key, at)) = first_holding(logging, bucket, &prefixes, canary, holds).await? {
        return Ok(evidence_of(
            &run.account,
            region,
            ACCESS_ANALYZER,
            format!("s3://{bucket}/{key}"),
            canary.arrived(at, canary.took(at)),
        ));
    }
    // EventBridge counts what it could not hand to a target (AWS/Events FailedInvocations).
    let failed = failed_invocations(security, canary).await?;
    let state = if failed > 0.0 {
        State::Refused(format!(
            "EventBridge reports {failed} failed invocation(s) of rule {FINDINGS} in {region} of the security account {}",
            security.account
        ))
    } else {
        waiting(canary, "the analyzer's finding")
    };
    Ok(evidence_of(&run.account, region, ACCESS_ANALYZER, role, state))
}

async fn failed_invocations(security: &AccountConfig, canary: &Canary) -> Result<f64, StepError> {
    metric_sum(security, "AWS/Events", "FailedInvocations", ("RuleName", FINDINGS), canary).await
}

/// The sum of a service's metric since the minute of the canary. Services publish these at a
/// minute's resolution, so a count may include what happened earlier in that minute.
async fn metric_sum(
    acct: &AccountConfig,
    namespace: &str,
    metric: &str,
    (dimension, value): (&str, &str),
    canary: &Canary,
) -> Result<f64, StepError> {
    let start = aws_smithy_types::DateTime::from_secs(canary.sent_at as i64);
    let end = aws_smithy_types::DateTime::from_secs(OffsetDateTime::now_utc().unix_timestamp() + 60);
    let out = acct
        .cloudwatch()
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric)
        .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name(dimension).value(value).build())
        .start_time(start)
        .end_time(end)
        .period(60)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
        .send()
        .await
        .aws(format!("cloudwatch:GetMetricStatistics {namespace} {metric}"))?;
    Ok(out.datapoints().iter().filter_map(|d| d.sum()).sum())
}

async fn alarm(run: &RunInput, home: &AccountConfig, canary: &Canary, sent: &Sent) -> Result<Evidence, StepError> {
    let name = format!("{ALARM_PREFIX}{CANARY_ALARM}");
    let resource = format!("arn:aws:cloudwatch:{}:{}:alarm:{name}", home.region, home.account);
    if let Some(why) = sent.refused_for(ALARM, &home.region) {
        return Ok(evidence(home, ALARM, resource, State::Refused(format!("the alarm test was refused: {why}"))));
    }
    let history = home
        .cloudwatch()
        .describe_alarm_history()
        .alarm_name(&name)
        .history_item_type(aws_sdk_cloudwatch::types::HistoryItemType::Action)
        .start_date(aws_smithy_types::DateTime::from_secs(canary.sent_at as i64 - 1))
        .send()
        .await
        .aws(format!("cloudwatch:DescribeAlarmHistory {name}"))?;
    let latest = history
        .alarm_history_items()
        .iter()
        .filter(|i| i.timestamp().is_some_and(|t| canary.after(t.as_secs_f64())))
        .max_by(|a, b| {
            a.timestamp()
                .map(|t| t.as_secs_f64())
                .partial_cmp(&b.timestamp().map(|t| t.as_secs_f64()))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    let state = match latest {
        Some(i) if i.history_summary().unwrap_or_default().starts_with("Successfully") => {
            let at = i.timestamp().map(|t| t.as_secs_f64()).unwrap_or(canary.sent_at);
            let published = format!("{} ({})", i.history_summary().unwrap_or_default(), canary.took(at));
            match &run.notify {
                Some(notify) => subscriber(home, notify, canary, at, published).await?,
                None => canary.arrived(
                    at,
                    format!(
                        "{published}; no notification endpoint is configured, so the topic has no subscriber to reach"
                    ),
                ),
            }
        }
        Some(i) => State::Refused(format!("CloudWatch reports: {}", i.history_summary().unwrap_or_default())),
        None => waiting(canary, "the alarm's notification"),
    };
    Ok(evidence(home, ALARM, resource, state))
}

/// The topic's last hop: the configured endpoint subscribed and confirmed, and SNS's own count of
/// what it delivered to the topic's subscribers or failed to (AWS/SNS NumberOfNotificationsDelivered
/// and NumberOfNotificationsFailed, https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html).
/// An alarm nobody receives is no alarm.
async fn subscriber(
    home: &AccountConfig,
    notify: &Notify,
    canary: &Canary,
    published_at: f64,
    published: String,
) -> Result<State, StepError> {
    let topic = crate::controls::alarms::topic_arn(home);
    let subs = crate::controls::alarms::subscriptions(home, &topic).await?;
    let protocol = notify.protocol.as_str();
    match subs.iter().find(|(p, e, _)| p == protocol && notify.shows_as(e)) {
        None => {
            return Ok(State::Refused(format!(
                "{published}, but the configured {protocol} endpoint is not subscribed to {ALARM_TOPIC}: the notification reached nobody"
            )))
        }
        Some((_, _, false)) => {
            return Ok(State::Refused(format!(
                "{published}, but the {protocol} subscription awaits its owner's confirmation: SNS delivers nothing to it until then"
            )))
        }
        Some(_) => {}
    }
    let (delivered, failed) = futures::try_join!(
        metric_sum(home, "AWS/SNS", "NumberOfNotificationsDelivered", ("TopicName", ALARM_TOPIC), canary),
        metric_sum(home, "AWS/SNS", "NumberOfNotificationsFailed", ("TopicName", ALARM_TOPIC), canary),
    )?;
    Ok(if delivered > 0.0 {
        canary.arrived(
            published_at,
            format!("{published}; SNS delivered {delivered} notification(s) to the topic's subscribers"),
        )
    } else if failed > 0.0 {
        State::Refused(format!(
            "{published}, but SNS reports {failed} failed delivery(ies) to the topic's subscribers (AWS/SNS NumberOfNotificationsFailed)"
        ))
    } else {
        waiting(canary, "SNS's delivery of the alarm's notification to the subscriber")
    })
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
const REPORTED_BY: &[(&str, &str)] = &[
    ("cloudtrail.to-logging-account", CLOUDTRAIL),
    ("config.to-logging-account", CONFIG),
    ("guardduty.findings-exported", GUARDDUTY),
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
        if proofs.iter().any(|p| p.control == *path && p.pending && (p.region == e.region || *path == CLOUDTRAIL)) {
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
    if found.iter().any(|e| e.control == ALARM && (e.passed || !e.detail.starts_with("the alarm test was refused"))) {
        settle_alarm(aws, run).await?;
    }
    Ok(())
}

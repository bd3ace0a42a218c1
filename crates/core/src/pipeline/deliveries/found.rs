//! Where each canary is looked for, and what the service reports when it is not there.

use std::io::Read;

use assure_contract::{Evidence, Notify, Region, RunInput, StepError};
use time::OffsetDateTime;

use crate::aws::{error_code, AccountConfig, AwsResultExt};
use crate::controls::names::{ALARM_PREFIX, ALARM_TOPIC, CONFIG_CHANNEL, FINDINGS, TRAIL};

use super::*;

/// The canary session's log in the logging bucket, where the session-manager step's preferences
/// send it (`session-manager/ACCOUNT/REGION/SESSION.log`).
pub(super) async fn session_log(
    target: &AccountConfig,
    logging: &AccountConfig,
    bucket: &str,
    canary: &Canary,
    sent: &Sent,
) -> Result<Option<Evidence>, StepError> {
    let region = &target.region;
    if let Some(why) = sent.refused_for(&SESSION, region) {
        let state = State::Refused(format!("the canary session was refused: {why}"));
        return Ok(Some(evidence(target, &SESSION, format!("ssm:{region}:session"), state)));
    }
    let Some((_, instance, id)) = sent.sessions.iter().find(|(r, _, _)| r == region) else { return Ok(None) };
    let key = format!("session-manager/{}/{region}/{id}.log", target.account);
    let resource = format!("s3://{bucket}/{key}");
    match logging.s3().head_object().bucket(bucket).key(&key).send().await {
        Ok(o) => {
            let at = o.last_modified().map(|t| t.as_secs_f64()).unwrap_or(canary.sent_at);
            let state = canary.arrived(at, format!("session {id} on {instance}, {}", canary.took(at)));
            return Ok(Some(evidence(target, &SESSION, resource, state)));
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
    Ok(Some(evidence(target, &SESSION, resource, state)))
}

/// The objects under `prefix` written since the canary: (key, seconds).
pub(super) async fn written_since(
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
pub(super) async fn text_of(logging: &AccountConfig, bucket: &str, key: &str) -> Result<String, StepError> {
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
pub(super) fn days(canary: &Canary, fmt: impl Fn(OffsetDateTime) -> String) -> Vec<String> {
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
pub(super) fn ymd(d: OffsetDateTime) -> String {
    format!("{:04}/{:02}/{:02}", d.year(), d.month() as u8, d.day())
}

/// The first object under any of `prefixes` written since the canary whose text `holds`.
pub(super) async fn first_holding(
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
pub(super) fn documents(text: &str) -> impl Iterator<Item = serde_json::Value> + '_ {
    serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>().map_while(Result::ok)
}

pub(super) fn waiting(canary: &Canary, what: &str) -> State {
    let waited = OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9 - canary.sent_at;
    State::Waiting(format!("{what} not delivered yet ({waited:.0} s since the canary)"))
}

pub(super) async fn trail(
    target: &AccountConfig,
    home: &Region,
    logging: &AccountConfig,
    canary: &Canary,
    sent: &Sent,
) -> Result<Evidence, StepError> {
    let region = &target.region;
    // The cloudtrail step makes the trail in the run's home Region.
    let arn = format!("arn:aws:cloudtrail:{home}:{}:trail/{TRAIL}", target.account);
    if let Some(why) = sent.refused_for(&CLOUDTRAIL, region) {
        return Ok(evidence(target, &CLOUDTRAIL, arn, State::Refused(format!("the canary call was refused: {why}"))));
    }
    // The trail by its ARN: from any Region, a multi-Region trail's shadow answers for it.
    let found = target.cloudtrail().get_trail().name(&arn).send().await.aws(format!("cloudtrail:GetTrail {arn}"))?;
    let Some(t) = found.trail() else {
        return Ok(evidence(target, &CLOUDTRAIL, arn, State::Refused("no assure trail".into())));
    };
    let bucket = t.s3_bucket_name().unwrap_or_default().to_owned();
    let prefix = folder(t.s3_key_prefix());
    let account = &target.account;
    let prefixes = days(canary, |d| format!("{prefix}AWSLogs/{account}/CloudTrail/{region}/{}/", ymd(d)));
    let marker = canary.marker.as_str();
    if let Some((key, at)) = first_holding(logging, &bucket, &prefixes, canary, |text| text.contains(marker)).await? {
        return Ok(evidence(target, &CLOUDTRAIL, format!("s3://{bucket}/{key}"), canary.arrived(at, canary.took(at))));
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
    Ok(evidence(target, &CLOUDTRAIL, arn, state))
}

/// A delivery's key prefix as the folder the service writes under: `PREFIX/`, or nothing.
pub(super) fn folder(prefix: Option<&str>) -> String {
    match prefix.map(|p| p.trim_matches('/')) {
        Some(p) if !p.is_empty() => format!("{p}/"),
        _ => String::new(),
    }
}

/// GetTrailStatus writes attempt times as text (`2026-12-06T21:00:00Z` or epoch seconds).
pub(super) fn parse_time(text: &str) -> Option<f64> {
    if let Ok(secs) = text.parse::<f64>() {
        return Some(secs);
    }
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
}

/// The home Region of the assure trail (the run's home, where the trail step made it).
/// The Region's delivery channel (Config allows one).
pub(super) async fn channel_of(
    acct: &AccountConfig,
) -> Result<Option<aws_sdk_config::types::DeliveryChannel>, StepError> {
    let out = acct.config().describe_delivery_channels().send().await.aws("config:DescribeDeliveryChannels")?;
    Ok(out.delivery_channels().first().cloned())
}

pub(super) async fn config(
    target: &AccountConfig,
    logging: &AccountConfig,
    canary: &Canary,
    sent: &Sent,
) -> Result<Evidence, StepError> {
    let region = &target.region;
    let resource = format!("config:{region}:{}:delivery-channel", target.account);
    if let Some(why) = sent.refused_for(&CONFIG, region) {
        return Ok(evidence(target, &CONFIG, resource, State::Refused(format!("the snapshot was refused: {why}"))));
    }
    let Some(channel) = channel_of(target).await? else {
        return Ok(evidence(target, &CONFIG, resource, State::Refused("no delivery channel".into())));
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
            return Ok(evidence(target, &CONFIG, format!("s3://{bucket}/{key}"), canary.arrived(at, canary.took(at))));
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
    Ok(evidence(target, &CONFIG, resource, state))
}

pub(super) async fn guardduty(
    target: &AccountConfig,
    security: &AccountConfig,
    logging: &AccountConfig,
    canary: &Canary,
    sent: &Sent,
) -> Result<Evidence, StepError> {
    let region = &target.region;
    let resource = format!("guardduty:{region}:{}:sample-findings", target.account);
    if let Some(why) = sent.refused_for(&GUARDDUTY, region) {
        return Ok(evidence(
            target,
            &GUARDDUTY,
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
            &GUARDDUTY,
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
        return Ok(evidence(target, &GUARDDUTY, format!("s3://{bucket}/{key}"), canary.arrived(at, canary.took(at))));
    }
    let state = match d.status().map(|s| s.as_str()).unwrap_or_default() {
        "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY" => State::Refused(format!(
            "GuardDuty reports the security account's destination {arn} as UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
        )),
        _ => waiting(canary, "the sample finding"),
    };
    Ok(evidence(target, &GUARDDUTY, resource, state))
}

pub(super) async fn analyzer(
    run: &RunInput,
    security: &AccountConfig,
    logging: &AccountConfig,
    bucket: &str,
    canary: &Canary,
    sent: &Sent,
) -> Result<Evidence, StepError> {
    let region = &security.region;
    let role = format!("arn:aws:iam::{}:role/{}", run.account, canary.role());
    if let Some(why) = sent.refused_for(&ACCESS_ANALYZER, &run.home_region) {
        return Ok(evidence_of(
            &run.account,
            region,
            &ACCESS_ANALYZER,
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
            &ACCESS_ANALYZER,
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
    Ok(evidence_of(&run.account, region, &ACCESS_ANALYZER, role, state))
}

pub(super) async fn failed_invocations(security: &AccountConfig, canary: &Canary) -> Result<f64, StepError> {
    metric_sum(security, "AWS/Events", "FailedInvocations", ("RuleName", FINDINGS), canary).await
}

/// The sum of a service's metric since the minute of the canary. Services publish these at a
/// minute's resolution, so a count may include what happened earlier in that minute.
pub(super) async fn metric_sum(
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

pub(super) async fn alarm(
    run: &RunInput,
    home: &AccountConfig,
    canary: &Canary,
    sent: &Sent,
) -> Result<Evidence, StepError> {
    let name = format!("{ALARM_PREFIX}{CANARY_ALARM}");
    let resource = format!("arn:aws:cloudwatch:{}:{}:alarm:{name}", home.region, home.account);
    if let Some(why) = sent.refused_for(&ALARM, &home.region) {
        return Ok(evidence(home, &ALARM, resource, State::Refused(format!("the alarm test was refused: {why}"))));
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
    Ok(evidence(home, &ALARM, resource, state))
}

/// The topic's last hop: the configured endpoint subscribed and confirmed, and SNS's own count of
/// what it delivered to the topic's subscribers or failed to (AWS/SNS NumberOfNotificationsDelivered
/// and NumberOfNotificationsFailed, https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html).
/// An alarm nobody receives is no alarm.
pub(super) async fn subscriber(
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

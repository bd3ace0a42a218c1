//! CloudWatch alarms for every CIS AWS Foundations v7.0.0 section 5 event (section 4 in v3.0.0; it
//! includes the spec's ten):
//! a metric filter on the assure trail's log group with the CIS pattern, an alarm on its metric,
//! and an encrypted SNS topic the alarms notify.

use assure_contract::{RunInput, StepError, StepName, StepOutput};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
use aws_sdk_cloudwatchlogs::types::MetricTransformation;
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::controls::kit::{ensure_key, read_key, trail_log_group, Changes, LogGroup};
use crate::controls::names::{ALARM_KEY_ALIAS, ALARM_PREFIX, ALARM_TOPIC, METRIC_NAMESPACE, TRAIL_LOG_GROUP};
use crate::controls::{Ahead, Control, Report};

pub mod catalogue;
mod evidence;
pub(crate) mod filters;
mod permissions;

pub use evidence::*;
pub use filters::*;

pub(crate) fn topic_arn(acct: &AccountConfig) -> String {
    format!("arn:aws:sns:{}:{}:{ALARM_TOPIC}", acct.region, acct.account)
}

/// The policy of the key the alarm topic is encrypted with. Not the AWS managed `alias/aws/sns`:
/// its policy cannot admit CloudWatch, so alarms could never publish to the topic
/// (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services:
/// the key policy must allow cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*).
pub fn alarm_key_policy(account: &str, role_name: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministers", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "AssureMaintainsKey", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{account}:role/{role_name}")},
             "Action": ["kms:CreateAlias", "kms:DeleteAlias", "kms:EnableKeyRotation", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion",
                        "kms:EnableKey", "kms:CancelKeyDeletion"],
             "Resource": "*"},
            // Only for assure's alarms of this account: CloudWatch sends the alarm as the
            // source (aws:SourceArn, aws:SourceAccount), so no other account's alarm, and none
            // of another name, can use the key through it (confused deputy:
            // https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).
            {"Sid": "CloudWatchPublishesAlarms", "Effect": "Allow",
             "Principal": {"Service": "cloudwatch.amazonaws.com"},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
             "Condition": {
                 "StringEquals": {"aws:SourceAccount": account},
                 "ArnLike": {"aws:SourceArn": format!("arn:aws:cloudwatch:*:{account}:alarm:{ALARM_PREFIX}*")}}}
        ]
    })
}

/// A metric filter as it stands: its pattern and where it publishes. A filter whose pattern is the
/// benchmark's but which publishes to another namespace, or a value other than 1, feeds no alarm.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct Filter {
    pattern: String,
    metric: String,
    namespace: String,
    value: String,
}

/// An alarm as it stands: what it watches, how it fires and whom it tells.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
struct Alarm {
    metric: String,
    namespace: String,
    actions: Vec<String>,
    actions_enabled: bool,
    rule: String,
}

/// How every alarm of assure fires: a sum of at least 1 over five minutes, silence meaning no event.
fn alarm_rule() -> String {
    "Sum >= 1 over 300 s, 1 period, missing data notBreaching".to_owned()
}

/// The filter assure wants for `short`.
fn wanted_filter(short: &str, pattern: &str) -> Filter {
    let metric = format!("{ALARM_PREFIX}{short}");
    Filter { pattern: pattern.to_owned(), metric, namespace: METRIC_NAMESPACE.to_owned(), value: "1".to_owned() }
}

/// The attribute standing for a topic whose policy refuses assure's own reads.
const UNREADABLE: &str = "assure:unreadable";

/// What exists now: filters and alarms by name, and the topic's attributes (None: no topic).
struct Found {
    filters: std::collections::BTreeMap<String, Filter>,
    alarms: std::collections::BTreeMap<String, Alarm>,
    topic: Option<std::collections::HashMap<String, String>>,
}

impl Found {
    /// The topic's key: None without a topic, Some(None) for a topic without one.
    fn topic_key(&self) -> Option<Option<String>> {
        self.topic.as_ref().map(|a| a.get("KmsMasterKeyId").cloned())
    }
}

/// What exists now. Without the log group (`group`: false) there are no filters to read.
async fn read(acct: &AccountConfig, group: bool) -> Result<Found, StepError> {
    let mut filters = std::collections::BTreeMap::new();
    if group {
        let mut pages = acct
            .logs()
            .describe_metric_filters()
            .log_group_name(TRAIL_LOG_GROUP)
            .filter_name_prefix(ALARM_PREFIX)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for f in page.aws("logs:DescribeMetricFilters")?.metric_filters() {
                let m = f.metric_transformations().first();
                filters.insert(
                    f.filter_name().unwrap_or_default().to_owned(),
                    Filter {
                        pattern: f.filter_pattern().unwrap_or_default().to_owned(),
                        metric: m.map(|m| m.metric_name().to_owned()).unwrap_or_default(),
                        namespace: m.map(|m| m.metric_namespace().to_owned()).unwrap_or_default(),
                        value: m.map(|m| m.metric_value().to_owned()).unwrap_or_default(),
                    },
                );
            }
        }
    }
    let mut alarms = std::collections::BTreeMap::new();
    let mut pages = acct.cloudwatch().describe_alarms().alarm_name_prefix(ALARM_PREFIX).into_paginator().send();
    while let Some(page) = pages.next().await {
        for a in page.aws("cloudwatch:DescribeAlarms")?.metric_alarms() {
            let rule = format!(
                "{} {} {} over {} s, {} period{}, missing data {}",
                a.statistic().map(|s| s.as_str()).unwrap_or("?"),
                match a.comparison_operator() {
                    Some(ComparisonOperator::GreaterThanOrEqualToThreshold) => ">=",
                    Some(o) => o.as_str(),
                    None => "?",
                },
                a.threshold().unwrap_or(f64::NAN),
                a.period().unwrap_or_default(),
                a.evaluation_periods().unwrap_or_default(),
                if a.evaluation_periods() == Some(1) { "" } else { "s" },
                a.treat_missing_data().unwrap_or("missing"),
            );
            alarms.insert(
                a.alarm_name().unwrap_or_default().to_owned(),
                Alarm {
                    metric: a.metric_name().unwrap_or_default().to_owned(),
                    namespace: a.namespace().unwrap_or_default().to_owned(),
                    actions: a.alarm_actions().to_vec(),
                    actions_enabled: a.actions_enabled().unwrap_or(true),
                    rule,
                },
            );
        }
    }
    let topic = match acct.sns().get_topic_attributes().topic_arn(topic_arn(acct)).send().await {
        Ok(out) => Some(out.attributes().cloned().unwrap_or_default()),
        Err(e) if crate::aws::error_code(&e) == Some("NotFound") => None,
        // A topic policy that denies everyone refuses assure too: that is what verify reports.
        Err(e) if crate::aws::error_code(&e) == Some("AuthorizationError") => {
            Some([(UNREADABLE.to_owned(), crate::aws::error_message(&e))].into_iter().collect())
        }
        Err(e) => return Err(e).aws(format!("sns:GetTopicAttributes {ALARM_TOPIC}")),
    };
    Ok(Found { filters, alarms, topic })
}

/// The topic's subscriptions as (protocol, endpoint, confirmed).
pub(crate) async fn subscriptions(acct: &AccountConfig, topic: &str) -> Result<Vec<(String, String, bool)>, StepError> {
    let mut out = Vec::new();
    let mut pages = acct.sns().list_subscriptions_by_topic().topic_arn(topic).into_paginator().send();
    while let Some(page) = pages.next().await {
        for s in page.aws(format!("sns:ListSubscriptionsByTopic {ALARM_TOPIC}"))?.subscriptions() {
            out.push((
                s.protocol().unwrap_or_default().to_owned(),
                s.endpoint().unwrap_or_default().to_owned(),
                s.subscription_arn().is_some_and(|a| a.starts_with("arn:")),
            ));
        }
    }
    Ok(out)
}

/// The statements of a resource policy that deny anything: a topic's or a key's policy that denies
/// CloudWatch (or everyone) stops every alarm from notifying, whatever the Allow statements say.
fn denials(policy: Option<&Value>) -> Vec<String> {
    policy
        .and_then(|p| p["Statement"].as_array())
        .into_iter()
        .flatten()
        .filter(|s| s["Effect"] == "Deny")
        .map(|s| s["Sid"].as_str().map(str::to_owned).unwrap_or_else(|| s.to_string()))
        .collect()
}

/// How many filter and alarm writes are in flight at once.
const WRITES_AT_ONCE: usize = 5;

/// The endpoint to subscribe: the run's own, or, when the run carries it redacted, the
/// deployment's (which must show as the run's). None: not known here (a plan has no run facts).
async fn endpoint_of(aws: &Aws, n: &assure_contract::Notify) -> Result<Option<String>, StepError> {
    if !n.is_redacted() {
        return Ok(Some(n.endpoint.clone()));
    }
    let Some(whole) = aws.notify_endpoint_fact().await else { return Ok(None) };
    if !n.shows_as(&whole) {
        return Err(StepError::new(
            assure_contract::ErrorName::Conflict,
            format!(
                "alarms: the deployment's notification endpoint changed since the run started (the run names {}); start a new run",
                n.shown()
            ),
        ));
    }
    Ok(Some(whole))
}

pub async fn apply(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    let region = &run.home_region;
    let target = aws.account(&run.account, region).await?;
    let mut changes = Changes::new(&target);
    // The filters are on the trail's log group; a plan for an account without it shows it in the
    // CloudTrail step's plan, and every filter to make here.
    let group = !matches!(trail_log_group(&target, &mut changes).await?, LogGroup::Planned);
    let found = read(&target, group).await?;
    let topic = topic_arn(&target);
    let policy = alarm_key_policy(target.account.as_str(), &run.role_name);
    let key =
        ensure_key(&target, ALARM_KEY_ALIAS, "assure: encrypts the security alarm topic", policy, &mut changes).await?;
    let topic_key = key.arn.as_str();
    match &found.topic_key() {
        None => {
            if changes.live() {
                target
                    .sns()
                    .create_topic()
                    .name(ALARM_TOPIC)
                    .attributes("KmsMasterKeyId", topic_key)
                    .send()
                    .await
                    .aws(format!("sns:CreateTopic {ALARM_TOPIC}"))?;
            }
            changes.push(format!("sns:{ALARM_TOPIC}"), "create", Value::Null, json!({"KmsMasterKeyId": topic_key}));
        }
        Some(current) if current.as_deref() != Some(topic_key) => {
            if changes.live() {
                target
                    .sns()
                    .set_topic_attributes()
                    .topic_arn(&topic)
                    .attribute_name("KmsMasterKeyId")
                    .attribute_value(topic_key)
                    .send()
                    .await
                    .aws(format!("sns:SetTopicAttributes {ALARM_TOPIC}"))?;
            }
            changes.push(format!("sns:{ALARM_TOPIC}/KmsMasterKeyId"), "update", json!(current), json!(topic_key));
        }
        Some(_) => {}
    }
    if let Some(n) = &run.notify {
        // The endpoint itself, from the deployment's settings when the run carries it redacted; a
        // plan, which has no run facts, compares what both show.
        let endpoint = endpoint_of(aws, n).await?;
        if endpoint.is_none() && changes.live() {
            return Err(StepError::internal(format!(
                "alarms: the run names the {} endpoint {} but the deployment's settings do not",
                n.protocol.as_str(),
                n.shown()
            )));
        }
        let same = |e: &str| match &endpoint {
            Some(whole) => e == whole,
            None => n.shows_as(e),
        };
        let subscribed = match found.topic {
            None => false,
            Some(_) => {
                subscriptions(&target, &topic).await?.iter().any(|(p, e, _)| p == n.protocol.as_str() && same(e))
            }
        };
        if !subscribed {
            if let (true, Some(endpoint)) = (changes.live(), &endpoint) {
                target
                    .sns()
                    .subscribe()
                    .topic_arn(&topic)
                    .protocol(n.protocol.as_str())
                    .endpoint(endpoint)
                    .send()
                    .await
                    .aws(format!("sns:Subscribe {ALARM_TOPIC}"))?;
            }
            changes.push(
                format!("sns:{ALARM_TOPIC}/subscription/{}:{}", n.protocol.as_str(), n.shown()),
                "subscribe",
                Value::Null,
                json!({"protocol": n.protocol.as_str(), "endpoint": n.shown()}),
            );
        }
    }
    // The filters and alarms are independent writes: issued a few at a time rather than 30 in a
    // row, within CloudWatch's and CloudWatch Logs' per-account request rates (the SDK retries
    // a throttled one).
    let mut writes: Vec<futures::future::BoxFuture<'_, Result<(), StepError>>> = Vec::new();
    for (_, short, pattern) in all_filters() {
        let name = format!("{ALARM_PREFIX}{short}");
        let want = wanted_filter(short, pattern);
        let metric = want.metric.clone();
        if found.filters.get(&name) != Some(&want) {
            if changes.live() {
                let put = target
                    .logs()
                    .put_metric_filter()
                    .log_group_name(TRAIL_LOG_GROUP)
                    .filter_name(&name)
                    .filter_pattern(pattern)
                    .metric_transformations(
                        MetricTransformation::builder()
                            .metric_name(&metric)
                            .metric_namespace(METRIC_NAMESPACE)
                            .metric_value("1")
                            .build()
                            .map_err(|e| StepError::internal(e.to_string()))?,
                    );
                let name = name.clone();
                writes.push(Box::pin(async move {
                    put.send().await.aws(format!("logs:PutMetricFilter {name}")).map(|_| ())
                }));
            }
            changes.push(
                format!("logs:{TRAIL_LOG_GROUP}/filter/{name}"),
                if found.filters.contains_key(&name) { "update" } else { "create" },
                json!(found.filters.get(&name)),
                json!(want),
            );
        }
        let want_alarm = Alarm {
            metric: metric.clone(),
            namespace: METRIC_NAMESPACE.to_owned(),
            actions: vec![topic.clone()],
            actions_enabled: true,
            rule: alarm_rule(),
        };
        if found.alarms.get(&name) != Some(&want_alarm) {
            if changes.live() {
                let put = target
                    .cloudwatch()
                    .put_metric_alarm()
                    .alarm_name(&name)
                    .alarm_description(format!("assure: CIS AWS Foundations alarm for {short}"))
                    .metric_name(&metric)
                    .namespace(METRIC_NAMESPACE)
                    .statistic(Statistic::Sum)
                    .period(300)
                    .evaluation_periods(1)
                    .threshold(1.0)
                    .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
                    .treat_missing_data("notBreaching")
                    .actions_enabled(true)
                    .alarm_actions(&topic);
                let name = name.clone();
                writes.push(Box::pin(async move {
                    put.send().await.aws(format!("cloudwatch:PutMetricAlarm {name}")).map(|_| ())
                }));
            }
            changes.push(
                format!("cloudwatch:alarm/{name}"),
                if found.alarms.contains_key(&name) { "update" } else { "create" },
                json!(found.alarms.get(&name)),
                json!(want_alarm),
            );
        }
    }
    futures::stream::iter(writes).buffer_unordered(WRITES_AT_ONCE).try_collect::<Vec<()>>().await?;
    Ok(changes.output(StepName::Alarms, region, &format!("{} CIS alarms", all_filters().count()), Value::Null))
}

/// The alarms control: CIS v7.0.0 section 5's metric filters and alarms, and their encrypted topic.
pub const CONTROL: Control = Control {
    name: "alarms",
    steps: &[StepName::Alarms],
    catalogue: catalogue::ENTRIES,
    snapshot: None,
    permissions: permissions::PERMISSIONS,
    ahead: Ahead::NOTHING,
    apply: |call| Box::pin(apply(call.aws, call.run)),
    evidence: |aws, run, _| Box::pin(evidence_for(aws, run)),
    compensate: |undo, region, report| {
        Box::pin(async move { remove_alarms(&undo.target(region).await?, report).await })
    },
};

async fn remove_alarms(acct: &AccountConfig, report: &mut Report) -> Result<(), StepError> {
    let cw = acct.cloudwatch();
    let alarms = cw.describe_alarms().alarm_name_prefix(ALARM_PREFIX).send().await.aws("cloudwatch:DescribeAlarms")?;
    let names: Vec<String> = alarms.metric_alarms().iter().filter_map(|a| a.alarm_name().map(str::to_owned)).collect();
    if !names.is_empty() {
        cw.delete_alarms().set_alarm_names(Some(names.clone())).send().await.aws("cloudwatch:DeleteAlarms")?;
        report.restored.push(format!("alarms: {} alarms removed", names.len()));
    }
    let logs = acct.logs();
    match logs.describe_metric_filters().log_group_name(TRAIL_LOG_GROUP).filter_name_prefix(ALARM_PREFIX).send().await {
        Ok(f) => {
            for mf in f.metric_filters() {
                logs.delete_metric_filter()
                    .log_group_name(TRAIL_LOG_GROUP)
                    .filter_name(mf.filter_name().unwrap_or_default())
                    .send()
                    .await
                    .aws("logs:DeleteMetricFilter")?;
            }
        }
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => {}
        Err(e) => return Err(e).aws("logs:DescribeMetricFilters"),
    }
    let topic = format!("arn:aws:sns:{}:{}:{ALARM_TOPIC}", acct.region, acct.account);
    acct.sns().delete_topic().topic_arn(&topic).send().await.aws("sns:DeleteTopic")?;
    report.restored.push("alarms: metric filters and the alarm topic removed".to_owned());
    // The key encrypted only the topic's messages in transit: its alias goes, the key is deleted
    // after KMS's longest waiting period.
    if let Some(key) = read_key(acct, ALARM_KEY_ALIAS).await? {
        let kms = acct.kms();
        kms.delete_alias()
            .alias_name(ALARM_KEY_ALIAS)
            .send()
            .await
            .aws(format!("kms:DeleteAlias {ALARM_KEY_ALIAS}"))?;
        kms.schedule_key_deletion()
            .key_id(&key.key_id)
            .pending_window_in_days(30)
            .send()
            .await
            .aws("kms:ScheduleKeyDeletion")?;
        report.restored.push(format!("alarms: the topic's key {} scheduled for deletion in 30 days", key.arn));
    }
    Ok(())
}

//! CloudWatch alarms for every CIS AWS Foundations section 4 event (which includes the spec's ten):
//! a metric filter on the assure trail's log group with the CIS pattern, an alarm on its metric,
//! and an encrypted SNS topic the alarms notify.

use assure_contract::{Evidence, Region, RunInput, StepError, StepName, StepOutput};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
use aws_sdk_cloudwatchlogs::types::MetricTransformation;
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::controls::kit::{ensure_key, evidence, read_key, trail_log_group, Changes, LogGroup};
use crate::controls::names::{ALARM_KEY_ALIAS, ALARM_PREFIX, ALARM_TOPIC, METRIC_NAMESPACE, TRAIL_LOG_GROUP};
use crate::controls::{Control, Fut, Report, StepCall, Undo};

/// (control id, short name, CIS filter pattern). Patterns as the CIS AWS Foundations Benchmark
/// v7.0.0 gives them in each section 5 recommendation's audit procedure (step 3), in CloudWatch
/// Logs' syntax (values with spaces or wildcards quoted); a test compares them word for word.
pub const FILTERS: &[(&str, &str, &str)] = &[
    (
        "alarms.unauthorized-api-calls",
        "unauthorized-api-calls",
        r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") && ($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket") }"#,
    ),
    (
        "alarms.console-without-mfa",
        "console-signin-without-mfa",
        r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
    ),
    (
        "alarms.root-usage",
        "root-account-usage",
        r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#,
    ),
    (
        "alarms.iam-policy-changes",
        "iam-policy-changes",
        r#"{ ($.eventName = DeleteGroupPolicy) || ($.eventName = DeleteRolePolicy) || ($.eventName = DeleteUserPolicy) || ($.eventName = PutGroupPolicy) || ($.eventName = PutRolePolicy) || ($.eventName = PutUserPolicy) || ($.eventName = CreatePolicy) || ($.eventName = DeletePolicy) || ($.eventName = CreatePolicyVersion) || ($.eventName = DeletePolicyVersion) || ($.eventName = AttachRolePolicy) || ($.eventName = DetachRolePolicy) || ($.eventName = AttachUserPolicy) || ($.eventName = DetachUserPolicy) || ($.eventName = AttachGroupPolicy) || ($.eventName = DetachGroupPolicy) }"#,
    ),
    (
        "alarms.cloudtrail-changes",
        "cloudtrail-configuration-changes",
        r#"{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging) }"#,
    ),
    (
        "alarms.console-auth-failures",
        "console-authentication-failures",
        r#"{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }"#,
    ),
    (
        "alarms.cmk-disable-or-deletion",
        "cmk-disable-or-scheduled-deletion",
        r#"{ ($.eventSource = kms.amazonaws.com) && (($.eventName = DisableKey) || ($.eventName = ScheduleKeyDeletion)) }"#,
    ),
    (
        "alarms.s3-bucket-policy-changes",
        "s3-bucket-policy-changes",
        r#"{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || ($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || ($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || ($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || ($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }"#,
    ),
    (
        "alarms.config-changes",
        "config-configuration-changes",
        r#"{ ($.eventSource = config.amazonaws.com) && (($.eventName = StopConfigurationRecorder) || ($.eventName = DeleteDeliveryChannel) || ($.eventName = PutDeliveryChannel) || ($.eventName = PutConfigurationRecorder)) }"#,
    ),
    (
        "alarms.security-group-changes",
        "security-group-changes",
        r#"{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) || ($.eventName = ModifySecurityGroupRules) }"#,
    ),
    (
        "alarms.nacl-changes",
        "nacl-changes",
        r#"{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || ($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || ($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }"#,
    ),
    (
        "alarms.network-gateway-changes",
        "network-gateway-changes",
        r#"{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || ($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || ($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }"#,
    ),
    (
        "alarms.route-table-changes",
        "route-table-changes",
        r#"{ ($.eventSource = ec2.amazonaws.com) && ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }"#,
    ),
    (
        "alarms.vpc-changes",
        "vpc-changes",
        r#"{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || ($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || ($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || ($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || ($.eventName = EnableVpcClassicLink) }"#,
    ),
    (
        "alarms.organizations-changes",
        "organizations-changes",
        r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }"#,
    ),
];

/// The scanners users run against an account check these filters with rules of their own, which
/// the benchmark's text alone does not always satisfy (a test applies each scanner's rule to
/// [`FILTERS`] and these). Each is a second filter, with its own alarm on the same topic, for the
/// same control; its events also raise the benchmark's alarm, so they notify twice.
/// (control id, short name, pattern, which scanner and why).
pub const SCANNER_FILTERS: &[(&str, &str, &str, &str)] = &[
    (
        "alarms.unauthorized-api-calls",
        "unauthorized-api-calls-cis-v1",
        r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }"#,
        "AWS Security Hub CloudWatch.2 requires the CIS v1.2.0 pattern exactly, without v7.0.0's exclusions",
    ),
    (
        "alarms.security-group-changes",
        "security-group-changes-cis-v1",
        r#"{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }"#,
        "AWS Security Hub CloudWatch.10 requires the CIS v1.2.0 pattern exactly, without ModifySecurityGroupRules",
    ),
    (
        "alarms.route-table-changes",
        "route-table-changes-cis-v1",
        r#"{ ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }"#,
        "AWS Security Hub CloudWatch.13 requires the CIS v1.2.0 pattern exactly, without the event source",
    ),
    (
        "alarms.organizations-changes",
        "organizations-changes-all",
        r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CancelHandshake") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganization") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnableAllFeatures") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }"#,
        "Prowler's cloudwatch_log_metric_filter_aws_organizations_changes also wants CancelHandshake, CreateOrganization and EnableAllFeatures",
    ),
];

/// Every filter assure keeps: (control id, short name, pattern).
pub fn all_filters() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    FILTERS.iter().copied().chain(SCANNER_FILTERS.iter().map(|(c, n, p, _)| (*c, *n, *p)))
}

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
    let Some(whole) = aws.fact(crate::aws::NOTIFY_ENDPOINT_FACT).await else { return Ok(None) };
    let whole = whole.as_str().unwrap_or_default().to_owned();
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

/// Evidence: one per CIS alarm (its filter's pattern, namespace and value; the alarm's metric,
/// rule, actions), and the topic: its key (enabled, with exactly assure's policy), its policy (no
/// denial) and the subscription of the configured endpoint. Each names what it found.
pub async fn evidence_for(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    let target = aws.account(&run.account, &run.home_region).await?;
    let found = read(&target, true).await?;
    let topic = topic_arn(&target);
    let mut out = Vec::new();
    for (control, short, pattern) in all_filters() {
        let name = format!("{ALARM_PREFIX}{short}");
        let want = wanted_filter(short, pattern);
        let filter = match found.filters.get(&name) {
            None => "no metric filter".to_owned(),
            Some(f) if f.pattern != want.pattern => "a metric filter whose pattern is not the benchmark's".to_owned(),
            Some(f) if f.namespace != want.namespace || f.metric != want.metric || f.value != want.value => format!(
                "a metric filter publishing value {:?} to {}/{} instead of 1 to {}/{}",
                f.value, f.namespace, f.metric, want.namespace, want.metric
            ),
            Some(_) => String::new(),
        };
        let alarm = match found.alarms.get(&name) {
            None => "no alarm".to_owned(),
            Some(a) if a.namespace != want.namespace || a.metric != want.metric => {
                format!("an alarm on {}/{} instead of {}/{}", a.namespace, a.metric, want.namespace, want.metric)
            }
            Some(a) if a.rule != alarm_rule() => format!("an alarm firing on {} instead of {}", a.rule, alarm_rule()),
            Some(a) if !a.actions_enabled => "an alarm with its actions disabled".to_owned(),
            Some(a) if !a.actions.contains(&topic) => format!("an alarm notifying {:?}, not {ALARM_TOPIC}", a.actions),
            Some(_) => String::new(),
        };
        let problems: Vec<&str> = [filter.as_str(), alarm.as_str()].into_iter().filter(|p| !p.is_empty()).collect();
        out.push(evidence(
            &target,
            control,
            format!("cloudwatch:alarm/{name}"),
            problems.is_empty(),
            if problems.is_empty() {
                format!("metric filter with the CIS pattern, 1 to {METRIC_NAMESPACE}/{name}; alarm on it notifying {ALARM_TOPIC}")
            } else {
                problems.join("; ")
            },
        ));
    }
    // Encrypted with the alarm key, enabled, whose policy lets CloudWatch publish and denies
    // nothing: under the AWS managed key, or a key disabled, pending deletion or whose policy an
    // administrator rewrote, the topic is encrypted, yet no alarm could ever notify.
    let key = read_key(&target, ALARM_KEY_ALIAS).await?;
    let mut problems = Vec::new();
    match &key {
        None => problems.push(format!("no key {ALARM_KEY_ALIAS}")),
        Some(k) => {
            if found.topic_key() != Some(Some(k.arn.clone())) {
                problems.push(format!("topic encrypted with {:?}, not {ALARM_KEY_ALIAS}", found.topic_key().flatten()));
            }
            if k.state != "Enabled" {
                problems.push(format!("{ALARM_KEY_ALIAS} is {}", k.state));
            }
            if k.policy.as_ref() != Some(&alarm_key_policy(target.account.as_str(), &run.role_name)) {
                let denied = denials(k.policy.as_ref());
                problems.push(if denied.is_empty() {
                    format!("{ALARM_KEY_ALIAS}'s policy is not assure's")
                } else {
                    format!("{ALARM_KEY_ALIAS}'s policy is not assure's; it denies: {}", denied.join(", "))
                });
            }
        }
    }
    if let Some(why) = found.topic.as_ref().and_then(|a| a.get(UNREADABLE)) {
        problems.push(format!("the topic's policy refuses even assure: {why}"));
    }
    let topic_policy = found.topic.as_ref().and_then(|a| a.get("Policy")).and_then(|p| serde_json::from_str(p).ok());
    let denied = denials(topic_policy.as_ref());
    if !denied.is_empty() {
        problems.push(format!("the topic's policy denies: {}", denied.join(", ")));
    }
    out.push(evidence(
        &target,
        "alarms.topic-encrypted",
        topic.clone(),
        problems.is_empty(),
        if problems.is_empty() {
            format!("encrypted with {ALARM_KEY_ALIAS}, enabled, whose policy is assure's (CloudWatch may publish); the topic's policy denies nothing")
        } else {
            problems.join("; ")
        },
    ));
    // The endpoint the configuration names is subscribed: an alarm nobody receives is no alarm.
    // A subscription still waiting for its owner's confirmation is shown as such.
    if let Some(n) = &run.notify {
        let subs = match &found.topic {
            Some(a) if !a.contains_key(UNREADABLE) => subscriptions(&target, &topic).await?,
            _ => Vec::new(),
        };
        // Verify has no run facts: a redacted endpoint is matched by what it shows (its host).
        let sub = subs.iter().find(|(p, e, _)| p == n.protocol.as_str() && n.shows_as(e));
        out.push(evidence(
            &target,
            "alarms.subscribed",
            format!("{topic}/subscription/{}", n.protocol.as_str()),
            sub.is_some(),
            match sub {
                Some((_, _, true)) => format!("{} endpoint subscribed, confirmed", n.protocol.as_str()),
                Some((_, _, false)) => {
                    format!("{} endpoint subscribed, pending its owner's confirmation", n.protocol.as_str())
                }
                None => format!(
                    "the configured {} endpoint is not subscribed ({} other subscriptions)",
                    n.protocol.as_str(),
                    subs.len()
                ),
            },
        ));
    }
    Ok(out)
}

/// The alarms control: CIS section 4's metric filters and alarms, and their encrypted topic.
pub struct Alarms;

impl Control for Alarms {
    fn name(&self) -> &'static str {
        "alarms"
    }

    fn steps(&self) -> &'static [StepName] {
        &[StepName::Alarms]
    }

    fn apply<'a>(&'a self, call: StepCall<'a>) -> Fut<'a, StepOutput> {
        let StepCall { aws, run, .. } = call;
        Box::pin(apply(aws, run))
    }

    fn evidence<'a>(&'a self, aws: &'a Aws, run: &'a RunInput, _: &'a Region) -> Fut<'a, Vec<Evidence>> {
        Box::pin(evidence_for(aws, run))
    }

    fn compensate<'a>(&'a self, undo: &'a Undo<'a>, region: &'a Region, report: &'a mut Report) -> Fut<'a, ()> {
        Box::pin(async move { remove_alarms(&undo.target(region).await?, report).await })
    }
}

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

#[cfg(test)]
mod tests {
    use super::{all_filters, FILTERS};

    /// Prowler's checks of the monitoring section and the regular expression each applies to a
    /// filter's pattern (`re.search(regex, pattern, flags=re.DOTALL)`), from
    /// prowler-cloud/prowler at 3e000faa3109230b748e4418a13c11c9e59f5cfb,
    /// `prowler/providers/aws/services/cloudwatch/`. A check passes when one filter matches.
    const PROWLER: &[(&str, &str)] = &[
        (
            "cloudwatch_changes_to_network_acls_alarm_configured",
            r#"(?=.*\$\.eventName\s*=\s*.?CreateNetworkAcl\b)(?=.*\$\.eventName\s*=\s*.?CreateNetworkAclEntry\b)(?=.*\$\.eventName\s*=\s*.?DeleteNetworkAcl\b)(?=.*\$\.eventName\s*=\s*.?DeleteNetworkAclEntry\b)(?=.*\$\.eventName\s*=\s*.?ReplaceNetworkAclEntry\b)(?=.*\$\.eventName\s*=\s*.?ReplaceNetworkAclAssociation\b)"#,
        ),
        (
            "cloudwatch_changes_to_network_gateways_alarm_configured",
            r#"(?=.*\$\.eventName\s*=\s*.?CreateCustomerGateway\b)(?=.*\$\.eventName\s*=\s*.?DeleteCustomerGateway\b)(?=.*\$\.eventName\s*=\s*.?AttachInternetGateway\b)(?=.*\$\.eventName\s*=\s*.?CreateInternetGateway\b)(?=.*\$\.eventName\s*=\s*.?DeleteInternetGateway\b)(?=.*\$\.eventName\s*=\s*.?DetachInternetGateway\b)"#,
        ),
        (
            "cloudwatch_changes_to_network_route_tables_alarm_configured",
            r#"(?=.*\$\.eventSource\s*=\s*.?ec2\.amazonaws\.com)(?=.*\$\.eventName\s*=\s*.?CreateRoute\b)(?=.*\$\.eventName\s*=\s*.?CreateRouteTable\b)(?=.*\$\.eventName\s*=\s*.?ReplaceRoute\b)(?=.*\$\.eventName\s*=\s*.?ReplaceRouteTableAssociation\b)(?=.*\$\.eventName\s*=\s*.?DeleteRouteTable\b)(?=.*\$\.eventName\s*=\s*.?DeleteRoute\b)(?=.*\$\.eventName\s*=\s*.?DisassociateRouteTable\b)"#,
        ),
        (
            "cloudwatch_changes_to_vpcs_alarm_configured",
            r#"(?=.*\$\.eventName\s*=\s*.?CreateVpc\b)(?=.*\$\.eventName\s*=\s*.?DeleteVpc\b)(?=.*\$\.eventName\s*=\s*.?ModifyVpcAttribute\b)(?=.*\$\.eventName\s*=\s*.?AcceptVpcPeeringConnection\b)(?=.*\$\.eventName\s*=\s*.?CreateVpcPeeringConnection\b)(?=.*\$\.eventName\s*=\s*.?DeleteVpcPeeringConnection\b)(?=.*\$\.eventName\s*=\s*.?RejectVpcPeeringConnection\b)(?=.*\$\.eventName\s*=\s*.?AttachClassicLinkVpc\b)(?=.*\$\.eventName\s*=\s*.?DetachClassicLinkVpc\b)(?=.*\$\.eventName\s*=\s*.?DisableVpcClassicLink\b)(?=.*\$\.eventName\s*=\s*.?EnableVpcClassicLink\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_and_alarm_for_aws_config_configuration_changes_enabled",
            r#"(?=.*\$\.eventSource\s*=\s*.?config\.amazonaws\.com)(?=.*\$\.eventName\s*=\s*.?StopConfigurationRecorder\b)(?=.*\$\.eventName\s*=\s*.?DeleteDeliveryChannel\b)(?=.*\$\.eventName\s*=\s*.?PutDeliveryChannel\b)(?=.*\$\.eventName\s*=\s*.?PutConfigurationRecorder\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_and_alarm_for_cloudtrail_configuration_changes_enabled",
            r#"(?=.*\$\.eventName\s*=\s*.?CreateTrail\b)(?=.*\$\.eventName\s*=\s*.?UpdateTrail\b)(?=.*\$\.eventName\s*=\s*.?DeleteTrail\b)(?=.*\$\.eventName\s*=\s*.?StartLogging\b)(?=.*\$\.eventName\s*=\s*.?StopLogging\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_authentication_failures",
            r#"(?=.*\$\.eventName\s*=\s*.?ConsoleLogin\b)(?=.*\$\.errorMessage\s*=\s*.?Failed\ authentication)"#,
        ),
        (
            "cloudwatch_log_metric_filter_aws_organizations_changes",
            r#"(?=.*\$\.eventSource\s*=\s*.?organizations\.amazonaws\.com)(?=.*\$\.eventName\s*=\s*.?AcceptHandshake\b)(?=.*\$\.eventName\s*=\s*.?AttachPolicy\b)(?=.*\$\.eventName\s*=\s*.?CancelHandshake\b)(?=.*\$\.eventName\s*=\s*.?CreateAccount\b)(?=.*\$\.eventName\s*=\s*.?CreateOrganization\b)(?=.*\$\.eventName\s*=\s*.?CreateOrganizationalUnit\b)(?=.*\$\.eventName\s*=\s*.?CreatePolicy\b)(?=.*\$\.eventName\s*=\s*.?DeclineHandshake\b)(?=.*\$\.eventName\s*=\s*.?DeleteOrganization\b)(?=.*\$\.eventName\s*=\s*.?DeleteOrganizationalUnit\b)(?=.*\$\.eventName\s*=\s*.?DeletePolicy\b)(?=.*\$\.eventName\s*=\s*.?EnableAllFeatures\b)(?=.*\$\.eventName\s*=\s*.?EnablePolicyType\b)(?=.*\$\.eventName\s*=\s*.?InviteAccountToOrganization\b)(?=.*\$\.eventName\s*=\s*.?LeaveOrganization\b)(?=.*\$\.eventName\s*=\s*.?DetachPolicy\b)(?=.*\$\.eventName\s*=\s*.?DisablePolicyType\b)(?=.*\$\.eventName\s*=\s*.?MoveAccount\b)(?=.*\$\.eventName\s*=\s*.?RemoveAccountFromOrganization\b)(?=.*\$\.eventName\s*=\s*.?UpdateOrganizationalUnit\b)(?=.*\$\.eventName\s*=\s*.?UpdatePolicy\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_disable_or_scheduled_deletion_of_kms_cmk",
            r#"(?=.*\$\.eventSource\s*=\s*.?kms\.amazonaws\.com)(?=.*\$\.eventName\s*=\s*.?DisableKey\b)(?=.*\$\.eventName\s*=\s*.?ScheduleKeyDeletion\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_for_s3_bucket_policy_changes",
            r#"(?=.*\$\.eventSource\s*=\s*.?s3\.amazonaws\.com)(?=.*\$\.eventName\s*=\s*.?PutBucketAcl\b)(?=.*\$\.eventName\s*=\s*.?PutBucketPolicy\b)(?=.*\$\.eventName\s*=\s*.?PutBucketCors\b)(?=.*\$\.eventName\s*=\s*.?PutBucketLifecycle\b)(?=.*\$\.eventName\s*=\s*.?PutBucketReplication\b)(?=.*\$\.eventName\s*=\s*.?DeleteBucketPolicy\b)(?=.*\$\.eventName\s*=\s*.?DeleteBucketCors\b)(?=.*\$\.eventName\s*=\s*.?DeleteBucketLifecycle\b)(?=.*\$\.eventName\s*=\s*.?DeleteBucketReplication\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_policy_changes",
            r#"(?=.*\$\.eventName\s*=\s*.?DeleteGroupPolicy\b)(?=.*\$\.eventName\s*=\s*.?DeleteRolePolicy\b)(?=.*\$\.eventName\s*=\s*.?DeleteUserPolicy\b)(?=.*\$\.eventName\s*=\s*.?PutGroupPolicy\b)(?=.*\$\.eventName\s*=\s*.?PutRolePolicy\b)(?=.*\$\.eventName\s*=\s*.?PutUserPolicy\b)(?=.*\$\.eventName\s*=\s*.?CreatePolicy\b)(?=.*\$\.eventName\s*=\s*.?DeletePolicy\b)(?=.*\$\.eventName\s*=\s*.?CreatePolicyVersion\b)(?=.*\$\.eventName\s*=\s*.?DeletePolicyVersion\b)(?=.*\$\.eventName\s*=\s*.?AttachRolePolicy\b)(?=.*\$\.eventName\s*=\s*.?DetachRolePolicy\b)(?=.*\$\.eventName\s*=\s*.?AttachUserPolicy\b)(?=.*\$\.eventName\s*=\s*.?DetachUserPolicy\b)(?=.*\$\.eventName\s*=\s*.?AttachGroupPolicy\b)(?=.*\$\.eventName\s*=\s*.?DetachGroupPolicy\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_root_usage",
            r#"\$\.userIdentity\.type\s*=\s*.?Root.+\$\.userIdentity\.invokedBy NOT EXISTS.+\$\.eventType\s*!=\s*.?AwsServiceEvent.?"#,
        ),
        (
            "cloudwatch_log_metric_filter_security_group_changes",
            r#"(?=.*\$\.eventName\s*=\s*.?AuthorizeSecurityGroupIngress\b)(?=.*\$\.eventName\s*=\s*.?AuthorizeSecurityGroupEgress\b)(?=.*\$\.eventName\s*=\s*.?RevokeSecurityGroupIngress\b)(?=.*\$\.eventName\s*=\s*.?RevokeSecurityGroupEgress\b)(?=.*\$\.eventName\s*=\s*.?CreateSecurityGroup\b)(?=.*\$\.eventName\s*=\s*.?DeleteSecurityGroup\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_sign_in_without_mfa",
            r#"(?=.*\$\.eventName\s*=\s*.?ConsoleLogin\b)(?=.*\$\.additionalEventData\.MFAUsed\s*!=\s*.?Yes)"#,
        ),
        (
            "cloudwatch_log_metric_filter_unauthorized_api_calls",
            r#"\$\.errorCode\s*=\s*.?\*UnauthorizedOperation.+\$\.errorCode\s*=\s*.?AccessDenied\*.?"#,
        ),
    ];

    /// AWS Security Hub's CIS controls and the pattern each requires exactly ("additional fields or
    /// terms cannot be added"), from the Security Hub user guide's CloudWatch controls page.
    const SECURITY_HUB: &[(&str, &str)] = &[
        (
            "CloudWatch.1",
            r#"{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent"}"#,
        ),
        ("CloudWatch.2", r#"{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}"#),
        (
            "CloudWatch.3",
            r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
        ),
        (
            "CloudWatch.4",
            r#"{($.eventName=DeleteGroupPolicy) || ($.eventName=DeleteRolePolicy) || ($.eventName=DeleteUserPolicy) || ($.eventName=PutGroupPolicy) || ($.eventName=PutRolePolicy) || ($.eventName=PutUserPolicy) || ($.eventName=CreatePolicy) || ($.eventName=DeletePolicy) || ($.eventName=CreatePolicyVersion) || ($.eventName=DeletePolicyVersion) || ($.eventName=AttachRolePolicy) || ($.eventName=DetachRolePolicy) || ($.eventName=AttachUserPolicy) || ($.eventName=DetachUserPolicy) || ($.eventName=AttachGroupPolicy) || ($.eventName=DetachGroupPolicy)}"#,
        ),
        (
            "CloudWatch.5",
            r#"{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) || ($.eventName=StartLogging) || ($.eventName=StopLogging)}"#,
        ),
        ("CloudWatch.6", r#"{($.eventName=ConsoleLogin) && ($.errorMessage="Failed authentication")}"#),
        (
            "CloudWatch.7",
            r#"{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || ($.eventName=ScheduleKeyDeletion))}"#,
        ),
        (
            "CloudWatch.8",
            r#"{($.eventSource=s3.amazonaws.com) && (($.eventName=PutBucketAcl) || ($.eventName=PutBucketPolicy) || ($.eventName=PutBucketCors) || ($.eventName=PutBucketLifecycle) || ($.eventName=PutBucketReplication) || ($.eventName=DeleteBucketPolicy) || ($.eventName=DeleteBucketCors) || ($.eventName=DeleteBucketLifecycle) || ($.eventName=DeleteBucketReplication))}"#,
        ),
        (
            "CloudWatch.9",
            r#"{($.eventSource=config.amazonaws.com) && (($.eventName=StopConfigurationRecorder) || ($.eventName=DeleteDeliveryChannel) || ($.eventName=PutDeliveryChannel) || ($.eventName=PutConfigurationRecorder))}"#,
        ),
        (
            "CloudWatch.10",
            r#"{($.eventName=AuthorizeSecurityGroupIngress) || ($.eventName=AuthorizeSecurityGroupEgress) || ($.eventName=RevokeSecurityGroupIngress) || ($.eventName=RevokeSecurityGroupEgress) || ($.eventName=CreateSecurityGroup) || ($.eventName=DeleteSecurityGroup)}"#,
        ),
        (
            "CloudWatch.11",
            r#"{($.eventName=CreateNetworkAcl) || ($.eventName=CreateNetworkAclEntry) || ($.eventName=DeleteNetworkAcl) || ($.eventName=DeleteNetworkAclEntry) || ($.eventName=ReplaceNetworkAclEntry) || ($.eventName=ReplaceNetworkAclAssociation)}"#,
        ),
        (
            "CloudWatch.12",
            r#"{($.eventName=CreateCustomerGateway) || ($.eventName=DeleteCustomerGateway) || ($.eventName=AttachInternetGateway) || ($.eventName=CreateInternetGateway) || ($.eventName=DeleteInternetGateway) || ($.eventName=DetachInternetGateway)}"#,
        ),
        (
            "CloudWatch.13",
            r#"{($.eventName=CreateRoute) || ($.eventName=CreateRouteTable) || ($.eventName=ReplaceRoute) || ($.eventName=ReplaceRouteTableAssociation) || ($.eventName=DeleteRouteTable) || ($.eventName=DeleteRoute) || ($.eventName=DisassociateRouteTable)}"#,
        ),
        (
            "CloudWatch.14",
            r#"{($.eventName=CreateVpc) || ($.eventName=DeleteVpc) || ($.eventName=ModifyVpcAttribute) || ($.eventName=AcceptVpcPeeringConnection) || ($.eventName=CreateVpcPeeringConnection) || ($.eventName=DeleteVpcPeeringConnection) || ($.eventName=RejectVpcPeeringConnection) || ($.eventName=AttachClassicLinkVpc) || ($.eventName=DetachClassicLinkVpc) || ($.eventName=DisableVpcClassicLink) || ($.eventName=EnableVpcClassicLink)}"#,
        ),
    ];

    /// Whether `pattern` satisfies Prowler's `regex` as Prowler applies it (Python's `re.search`
    /// with DOTALL). The `regex` crate has no lookaround: a chain of lookaheads `(?=.*A)(?=.*B)…`
    /// anchored nowhere matches exactly when each clause matches somewhere, so each is tried alone.
    fn prowler_matches(regex: &str, pattern: &str) -> bool {
        if !regex.starts_with("(?=") {
            return regex::Regex::new(&format!("(?s){regex}")).expect("regex").is_match(pattern);
        }
        regex.split("(?=").filter(|p| !p.is_empty()).all(|clause| {
            let inner = clause.strip_suffix(')').expect("a lookahead ends with )");
            let inner = inner.strip_prefix(".*").unwrap_or(inner);
            regex::Regex::new(&format!("(?s){inner}")).expect("regex").is_match(pattern)
        })
    }

    /// Security Hub compares the pattern exactly; only the spacing may differ.
    fn security_hub_matches(required: &str, pattern: &str) -> bool {
        let bare = |p: &str| p.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        bare(required) == bare(pattern)
    }

    /// The checks of `scanner` that no filter of `filters` passes.
    fn failing<'a>(checks: &'a [(&'a str, &'a str)], filters: &[&str], passes: fn(&str, &str) -> bool) -> Vec<&'a str> {
        checks.iter().filter(|(_, rule)| !filters.iter().any(|p| passes(rule, p))).map(|(name, _)| *name).collect()
    }

    #[test]
    fn every_scanner_check_of_the_monitoring_section_passes() {
        let ours: Vec<&str> = all_filters().map(|(_, _, p)| p).collect();
        assert_eq!(failing(PROWLER, &ours, prowler_matches), Vec::<&str>::new(), "Prowler");
        assert_eq!(failing(SECURITY_HUB, &ours, security_hub_matches), Vec::<&str>::new(), "Security Hub");
        // The benchmark's text alone fails both, which is why the scanner filters exist.
        let benchmark: Vec<&str> = FILTERS.iter().map(|(_, _, p)| *p).collect();
        assert_eq!(
            failing(PROWLER, &benchmark, prowler_matches),
            ["cloudwatch_log_metric_filter_aws_organizations_changes"]
        );
        assert_eq!(
            failing(SECURITY_HUB, &benchmark, security_hub_matches),
            ["CloudWatch.2", "CloudWatch.10", "CloudWatch.13"]
        );
    }

    #[test]
    fn the_scanner_rules_notice_a_missing_term() {
        let (_, route_tables) = PROWLER.iter().find(|(c, _)| c.contains("route_tables")).unwrap();
        let (_, _, ours) = FILTERS.iter().find(|(c, _, _)| *c == "alarms.route-table-changes").unwrap();
        assert!(prowler_matches(route_tables, ours));
        assert!(!prowler_matches(route_tables, &ours.replace("($.eventSource = ec2.amazonaws.com) && ", "")));
        assert!(!prowler_matches(route_tables, &ours.replace("DisassociateRouteTable", "DisassociateRouteTables")));
        let (_, root) = PROWLER.iter().find(|(c, _)| c.ends_with("root_usage")).unwrap();
        assert!(!prowler_matches(root, r#"{ $.userIdentity.type = "Root" }"#));
        assert!(!security_hub_matches(SECURITY_HUB[0].1, &format!("{} ", SECURITY_HUB[1].1)));
    }

    /// The filter patterns of the CIS AWS Foundations Benchmark v7.0.0, section 5, as each
    /// recommendation's audit procedure prints them ("Ensure the output from the above command
    /// contains the following: filterPattern: …"; 5.2 in its variant for organizations using SSO,
    /// which the benchmark offers to reduce false positives). Typed from the benchmark's text as
    /// Prowler's mapping carries it (`prowler/compliance/aws/cis_7.0_aws.json`), which drops the
    /// double quotes.
    const BENCHMARK: &[(&str, &str)] = &[
        ("5.1", "{ ($.errorCode =*UnauthorizedOperation) || ($.errorCode =AccessDenied*) && ($.sourceIPAddress!=delivery.logs.amazonaws.com) && ($.eventName!=HeadBucket) }"),
        ("5.2", "{ ($.eventName = ConsoleLogin) && ($.additionalEventData.MFAUsed != Yes) && ($.userIdentity.type = IAMUser) && ($.responseElements.ConsoleLogin = Success) }"),
        ("5.3", "{ $.userIdentity.type = Root && $.userIdentity.invokedBy NOT EXISTS && $.eventType != AwsServiceEvent }"),
        ("5.4", "{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||($.eventName=DeleteUserPolicy)||($.eventName=PutGroupPolicy)||($.eventName=PutRolePolicy)||($.eventName=PutUserPolicy)||($.eventName=CreatePolicy)||($.eventName=DeletePolicy)||($.eventName=CreatePolicyVersion)||($.eventName=DeletePolicyVersion)||($.eventName=AttachRolePolicy)||($.eventName=DetachRolePolicy)||($.eventName=AttachUserPolicy)||($.eventName=DetachUserPolicy)||($.eventName=AttachGroupPolicy)||($.eventName=DetachGroupPolicy)}"),
        ("5.5", "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging) }"),
        ("5.6", "{ ($.eventName = ConsoleLogin) && ($.errorMessage = Failed authentication) }"),
        ("5.7", "{($.eventSource = kms.amazonaws.com) && (($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion)) }"),
        ("5.8", "{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || ($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || ($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || ($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || ($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }"),
        ("5.9", "{ ($.eventSource = config.amazonaws.com) && (($.eventName=StopConfigurationRecorder)||($.eventName=DeleteDeliveryChannel)||($.eventName=PutDeliveryChannel)||($.eventName=PutConfigurationRecorder)) }"),
        ("5.10", "{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) || ($.eventName = ModifySecurityGroupRules) }"),
        ("5.11", "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || ($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || ($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }"),
        ("5.12", "{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || ($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || ($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }"),
        ("5.13", "{($.eventSource = ec2.amazonaws.com) && ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }"),
        ("5.14", "{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || ($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || ($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || ($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || ($.eventName = EnableVpcClassicLink) }"),
        ("5.15", "{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = AcceptHandshake) || ($.eventName = AttachPolicy) || ($.eventName = CreateAccount) || ($.eventName = CreateOrganizationalUnit) || ($.eventName = CreatePolicy) || ($.eventName = DeclineHandshake) || ($.eventName = DeleteOrganization) || ($.eventName = DeleteOrganizationalUnit) || ($.eventName = DeletePolicy) || ($.eventName = DetachPolicy) || ($.eventName = DisablePolicyType) || ($.eventName = EnablePolicyType) || ($.eventName = InviteAccountToOrganization) || ($.eventName = LeaveOrganization) || ($.eventName = MoveAccount) || ($.eventName = RemoveAccountFromOrganization) || ($.eventName = UpdatePolicy) || ($.eventName = UpdateOrganizationalUnit)) }"),
    ];

    /// The pattern's words and operators in order: what the benchmark's typography varies (spaces
    /// around operators, double quotes around values) is left out.
    fn words(pattern: &str) -> String {
        pattern.chars().filter(|c| !c.is_whitespace() && *c != '"').collect()
    }

    #[test]
    fn every_metric_filter_pattern_is_the_benchmarks_word_for_word() {
        assert_eq!(FILTERS.len(), BENCHMARK.len());
        for (control, _, pattern) in FILTERS {
            let cis = assure_contract::Control::find(control).and_then(|c| c.cis).and_then(|c| c.v7);
            let id = cis.unwrap_or_else(|| panic!("{control} has no CIS v7.0.0 id"));
            let (_, text) =
                BENCHMARK.iter().find(|(b, _)| *b == id).unwrap_or_else(|| panic!("no benchmark text for {id}"));
            assert_eq!(words(pattern), words(text), "{control} (CIS v7.0.0 {id}) differs from the benchmark");
        }
    }

    #[test]
    fn the_comparison_notices_a_missing_or_changed_word() {
        let (_, text) = BENCHMARK[9];
        let dropped = text.replace(" || ($.eventName = ModifySecurityGroupRules)", "");
        assert_ne!(words(&dropped), words(text));
        assert_ne!(words(&text.replace("DeleteSecurityGroup", "DeleteSecurityGroups")), words(text));
        assert_eq!(
            words(r#"{ ($.errorMessage = "Failed authentication") }"#),
            words("{($.errorMessage=Failed authentication)}")
        );
    }
}

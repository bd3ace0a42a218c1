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
        r#"{ ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }"#,
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

fn topic_arn(acct: &AccountConfig) -> String {
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
             "Action": ["kms:CreateAlias", "kms:DeleteAlias", "kms:EnableKeyRotation", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"],
             "Resource": "*"},
            {"Sid": "CloudWatchPublishesAlarms", "Effect": "Allow",
             "Principal": {"Service": "cloudwatch.amazonaws.com"},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"}
        ]
    })
}

/// What exists now: filters by name → (pattern, metric), alarms by name → (metric, actions), topic key.
struct Found {
    filters: std::collections::BTreeMap<String, (String, String)>,
    alarms: std::collections::BTreeMap<String, (String, Vec<String>)>,
    topic_key: Option<Option<String>>,
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
                let metric = f.metric_transformations().first().map(|m| m.metric_name().to_owned()).unwrap_or_default();
                filters.insert(
                    f.filter_name().unwrap_or_default().to_owned(),
                    (f.filter_pattern().unwrap_or_default().to_owned(), metric),
                );
            }
        }
    }
    let mut alarms = std::collections::BTreeMap::new();
    let mut pages = acct.cloudwatch().describe_alarms().alarm_name_prefix(ALARM_PREFIX).into_paginator().send();
    while let Some(page) = pages.next().await {
        for a in page.aws("cloudwatch:DescribeAlarms")?.metric_alarms() {
            alarms.insert(
                a.alarm_name().unwrap_or_default().to_owned(),
                (a.metric_name().unwrap_or_default().to_owned(), a.alarm_actions().to_vec()),
            );
        }
    }
    let topic_key = match acct.sns().get_topic_attributes().topic_arn(topic_arn(acct)).send().await {
        Ok(out) => Some(out.attributes().and_then(|a| a.get("KmsMasterKeyId")).cloned()),
        Err(e) if crate::aws::error_code(&e) == Some("NotFound") => None,
        Err(e) => return Err(e).aws(format!("sns:GetTopicAttributes {ALARM_TOPIC}")),
    };
    Ok(Found { filters, alarms, topic_key })
}

/// The topic's subscriptions as (protocol, endpoint), confirmed or pending.
async fn subscriptions(acct: &AccountConfig, topic: &str) -> Result<Vec<(String, String)>, StepError> {
    let mut out = Vec::new();
    let mut pages = acct.sns().list_subscriptions_by_topic().topic_arn(topic).into_paginator().send();
    while let Some(page) = pages.next().await {
        for s in page.aws(format!("sns:ListSubscriptionsByTopic {ALARM_TOPIC}"))?.subscriptions() {
            out.push((s.protocol().unwrap_or_default().to_owned(), s.endpoint().unwrap_or_default().to_owned()));
        }
    }
    Ok(out)
}

/// How many filter and alarm writes are in flight at once.
const WRITES_AT_ONCE: usize = 5;

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
    match &found.topic_key {
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
        let subscribed = match found.topic_key {
            None => false,
            Some(_) => {
                subscriptions(&target, &topic).await?.contains(&(n.protocol.as_str().to_owned(), n.endpoint.clone()))
            }
        };
        if !subscribed {
            if changes.live() {
                target
                    .sns()
                    .subscribe()
                    .topic_arn(&topic)
                    .protocol(n.protocol.as_str())
                    .endpoint(&n.endpoint)
                    .send()
                    .await
                    .aws(format!("sns:Subscribe {ALARM_TOPIC}"))?;
            }
            changes.push(
                format!("sns:{ALARM_TOPIC}/subscription/{}:{}", n.protocol.as_str(), n.endpoint),
                "subscribe",
                Value::Null,
                json!({"protocol": n.protocol.as_str(), "endpoint": n.endpoint}),
            );
        }
    }
    // The filters and alarms are independent writes: issued a few at a time rather than 30 in a
    // row, within CloudWatch's and CloudWatch Logs' per-account request rates (the SDK retries
    // a throttled one).
    let mut writes: Vec<futures::future::BoxFuture<'_, Result<(), StepError>>> = Vec::new();
    for (_, short, pattern) in FILTERS {
        let name = format!("{ALARM_PREFIX}{short}");
        let metric = format!("{ALARM_PREFIX}{short}");
        let want = (pattern.to_string(), metric.clone());
        if found.filters.get(&name) != Some(&want) {
            if changes.live() {
                let put = target
                    .logs()
                    .put_metric_filter()
                    .log_group_name(TRAIL_LOG_GROUP)
                    .filter_name(&name)
                    .filter_pattern(*pattern)
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
                json!({"pattern": pattern, "metric": metric}),
            );
        }
        let want_alarm = (metric.clone(), vec![topic.clone()]);
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
                json!({"metric": metric, "actions": [topic]}),
            );
        }
    }
    futures::stream::iter(writes).buffer_unordered(WRITES_AT_ONCE).try_collect::<Vec<()>>().await?;
    Ok(changes.output(StepName::Alarms, region, &format!("{} CIS alarms", FILTERS.len()), Value::Null))
}

/// Evidence: one per CIS alarm, and the topic's encryption.
pub async fn evidence_for(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    let target = aws.account(&run.account, &run.home_region).await?;
    let found = read(&target, true).await?;
    let topic = topic_arn(&target);
    let mut out = Vec::new();
    for (control, short, pattern) in FILTERS {
        let name = format!("{ALARM_PREFIX}{short}");
        let filter_ok = found.filters.get(&name).is_some_and(|(p, m)| p == pattern && *m == name);
        let alarm_ok = found.alarms.get(&name).is_some_and(|(m, a)| *m == name && a.contains(&topic));
        out.push(evidence(
            &target,
            control,
            format!("cloudwatch:alarm/{name}"),
            filter_ok && alarm_ok,
            format!("metric filter with the CIS pattern: {filter_ok}, alarm notifying {ALARM_TOPIC}: {alarm_ok}"),
        ));
    }
    // Encrypted with the alarm key, whose policy lets CloudWatch publish: under the AWS managed
    // key the topic is encrypted, yet no alarm could ever notify.
    let key = read_key(&target, ALARM_KEY_ALIAS).await?;
    let with_key = key.as_ref().is_some_and(|k| found.topic_key == Some(Some(k.arn.clone())));
    let cloudwatch_may_publish = key.as_ref().and_then(|k| k.policy.as_ref()).is_some_and(|p| {
        p["Statement"].as_array().into_iter().flatten().any(|s| {
            s["Effect"] == "Allow"
                && s["Principal"]["Service"] == "cloudwatch.amazonaws.com"
                && s["Action"].as_array().is_some_and(|a| a.contains(&json!("kms:GenerateDataKey*")))
                && s["Condition"].is_null()
        })
    });
    out.push(evidence(
        &target,
        "alarms.topic-encrypted",
        topic,
        with_key && cloudwatch_may_publish,
        format!(
            "topic KMS key: {:?}; {ALARM_KEY_ALIAS} admits CloudWatch: {cloudwatch_may_publish}",
            found.topic_key.flatten()
        ),
    ));
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
    use super::FILTERS;

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
        ("5.13", "{ ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }"),
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

//! IAM Access Analyzer, per region: trusted access for the organization and the security account
//! as delegated administrator (management account), an ORGANIZATION analyzer in the security
//! account, its findings delivered to the logging bucket, and the service-linked role
//! AWSServiceRoleForAccessAnalyzer in the account.
//!
//! Findings travel by EventBridge: in the home region a rule on the findings feeds one Firehose
//! stream writing to `access-analyzer/` in the logging bucket, encrypted with the logging key; in
//! every other region a rule on the findings sends them to the home region's default event bus,
//! where that rule picks them up (cross-Region routing:
//! https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html). One stream, not
//! one per region: each finding names its region, and a region's delivery is a rule, not a stream.

use assure_contract::{ErrorName, Evidence, Region, RunInput, StepError, StepName, StepOutput};
use aws_sdk_accessanalyzer::types::Type as AnalyzerType;
use serde_json::{json, Value};

use crate::aws::{error_code, while_role_propagates, AccountConfig, Aws, AwsResultExt};
use crate::controls::kit::organized;
use crate::controls::kit::{already_exists, evidence, Changes};
use crate::controls::kit::{ensure_delegated_administrator, ensure_service_linked_role};
use crate::controls::kit::{ensure_inline_policy, logging_key_to_use, service_role, Role, ServiceRole};
use crate::controls::names::{ANALYZER, FINDINGS, FINDINGS_EVENTS_ROLE, FINDINGS_ROLE};
use crate::controls::{Ahead, Control, Report, Undo};

pub mod catalogue;
mod permissions;

const PRINCIPAL: &str = "access-analyzer.amazonaws.com";
const SLR: &str = "AWSServiceRoleForAccessAnalyzer";

pub async fn apply(aws: &Aws, run: &RunInput, region: &Region) -> Result<StepOutput, StepError> {
    let target = aws.account(&run.account, region).await?;
    let mut changes = Changes::new(&target);
    // A bulk run's organization step did the organization's part for all its accounts.
    if run.organization.is_none() {
        organize_region(aws, run, region, &mut changes).await?;
    }
    ensure_service_linked_role(&target, PRINCIPAL, SLR, &mut changes).await?;
    Ok(changes.output(StepName::AccessAnalyzer, region, &format!("Access Analyzer in {region}"), Value::Null))
}

/// The organization's part in `region`: trusted access and the security account as delegated
/// administrator, its ORGANIZATION analyzer, the analyzer's findings delivered to the logging bucket.
async fn organize_region(aws: &Aws, run: &RunInput, region: &Region, changes: &mut Changes) -> Result<(), StepError> {
    let mgmt = aws.management(&run.org.management, region).await?;
    let security = aws.account(&run.org.security, region).await?;
    let findings_role =
        if *region == run.home_region { Some(ensure_findings_role(aws, run, &security, changes).await?) } else { None };
    let newly = ensure_delegated_administrator(&mgmt, region, PRINCIPAL, &run.org.security, changes).await?;

    // Only the management account or the delegated administrator can create an analyzer whose zone
    // of trust is the organization
    // (https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-getting-started.html), so an
    // account made the administrator just now has none to read: create it. Should one of that name
    // be there after all, CreateAnalyzer says so, and verify reads its type.
    let aa = security.accessanalyzer();
    let found = if newly && changes.live() {
        false
    } else {
        match aa.get_analyzer().analyzer_name(ANALYZER).send().await {
            Ok(_) => true,
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => false,
            Err(e) => return Err(e).aws(format!("access-analyzer:GetAnalyzer {ANALYZER}")),
        }
    };
    let mut made = false;
    if !found {
        let created = if changes.live() {
            // The security account is registered (ensured just above), by this run or another a
            // moment ago: Access Analyzer may not know it yet, so a refusal is retried, bounded.
            let create = || aa.create_analyzer().analyzer_name(ANALYZER).r#type(AnalyzerType::Organization).send();
            let res = crate::aws::while_propagating(crate::aws::registration_propagating, create).await;
            match res {
                Ok(_) => true,
                // There already: another account's run created it a moment ago, or it was there.
                Err(e) if already_exists(error_code(&e), "") => false,
                Err(e) => return Err(e).aws(format!("access-analyzer:CreateAnalyzer {ANALYZER}")),
            }
        } else {
            true
        };
        made = created && changes.live();
        if created {
            changes.push_in(
                security.account.clone(),
                region.clone(),
                format!("access-analyzer:analyzer/{ANALYZER}"),
                "create",
                Value::Null,
                json!({"type": "ORGANIZATION"}),
            );
        }
    }
    ensure_findings_delivery(aws, run, &security, made, findings_role, changes).await
}

/// An organization has one IAM Access Analyzer delegated administrator, which only the management
/// account can add, remove or change
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-settings.html). Another account
/// in that place would stop the access-analyzer step at RegisterDelegatedAdministrator, after every
/// change before it; it is knowable now, read-only.
async fn preflight(aws: &Aws, run: &RunInput) -> Result<(), StepError> {
    // A bulk run's organization step made the security account the administrator.
    if run.organization.is_some() {
        return Ok(());
    }
    let mgmt = aws.management(&run.org.management, &run.home_region).await?;
    let admins = mgmt
        .organizations()
        .list_delegated_administrators()
        .service_principal(PRINCIPAL)
        .send()
        .await
        .aws(format!("organizations:ListDelegatedAdministrators {PRINCIPAL}"))?;
    let other =
        admins.delegated_administrators().iter().filter_map(|a| a.id()).find(|id| *id != run.org.security.as_str());
    match other {
        Some(other) => Err(StepError::new(
            ErrorName::Conflict,
            format!(
                "access-analyzer: account {other} is the organization's IAM Access Analyzer delegated administrator, not the security account {}; an organization has one, and only the management account can change it (organizations:DeregisterDelegatedAdministrator --service-principal {PRINCIPAL})",
                run.org.security
            ),
        )),
        None => Ok(()),
    }
}

/// The event pattern of Access Analyzer findings.
fn finding_pattern() -> Value {
    json!({"source": ["aws.access-analyzer"], "detail-type": ["Access Analyzer Finding"]})
}

fn stream_arn(security: &AccountConfig) -> String {
    format!("arn:aws:firehose:{}:{}:deliverystream/{FINDINGS}", security.region, security.account)
}

/// The home region's default event bus, where the other regions' rules send their findings.
fn home_bus_arn(run: &RunInput) -> String {
    format!("arn:aws:events:{}:{}:event-bus/default", run.home_region, run.org.security)
}

/// Where the findings rule of `security`'s region sends them: the stream in the home region, the
/// home region's event bus elsewhere.
fn rule_target(run: &RunInput, security: &AccountConfig) -> String {
    if security.region == run.home_region {
        stream_arn(security)
    } else {
        home_bus_arn(run)
    }
}

/// Where findings land in the logging bucket.
const FINDINGS_PREFIX: &str = "access-analyzer/";

/// The findings stream as found.
#[derive(Debug)]
struct Stream {
    /// Its S3 destination: (bucket ARN, prefix, KMS key).
    destination: (String, String, Option<String>),
    /// DeliveryStreamStatus (ACTIVE once it delivers), and the reason AWS gives when it cannot,
    /// for the stream or its encryption.
    status: String,
    failure: Option<String>,
}

/// The findings stream as found, or None without a stream.
async fn read_stream(security: &AccountConfig) -> Result<Option<Stream>, StepError> {
    match security.firehose().describe_delivery_stream().delivery_stream_name(FINDINGS).send().await {
        Ok(out) => Ok(out.delivery_stream_description().and_then(|d| {
            let failure = d
                .failure_description()
                .or_else(|| d.delivery_stream_encryption_configuration().and_then(|e| e.failure_description()));
            d.destinations().first().map(|dest| {
                let s3 = dest.extended_s3_destination_description();
                Stream {
                    destination: (
                        s3.map(|s| s.bucket_arn().to_owned()).unwrap_or_default(),
                        s3.and_then(|s| s.prefix()).unwrap_or_default().to_owned(),
                        s3.and_then(|s| s.encryption_configuration())
                            .and_then(|e| e.kms_encryption_config())
                            .map(|k| k.awskms_key_arn().to_owned()),
                    ),
                    status: d.delivery_stream_status().as_str().to_owned(),
                    failure: failure.map(|f| format!("{}: {}", f.r#type().as_str(), f.details())),
                }
            })
        })),
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(e).aws(format!("firehose:DescribeDeliveryStream {FINDINGS}")),
    }
}

/// The share of the stream's writes to S3 that succeeded in its latest five minutes with any, over
/// the last day: AWS/Firehose `DeliveryToS3.Success`, which Firehose publishes per stream
/// (https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html). None
/// when nothing was delivered in that day: findings are rare, and no data is no failure.
async fn latest_delivery_success(security: &AccountConfig) -> Result<Option<f64>, StepError> {
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(24 * 3600);
    let out = security
        .cloudwatch()
        .get_metric_statistics()
        .namespace("AWS/Firehose")
        .metric_name("DeliveryToS3.Success")
        .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("DeliveryStreamName").value(FINDINGS).build())
        .start_time(aws_smithy_types::DateTime::from(now - day))
        // A minute past now: times travel in whole seconds, so a datapoint of this very second
        // (a delivery refused a moment ago) would fall after an end time of `now` cut to the second.
        .end_time(aws_smithy_types::DateTime::from(now + std::time::Duration::from_secs(60)))
        .period(300)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Minimum)
        .send()
        .await
        .aws(format!("cloudwatch:GetMetricStatistics AWS/Firehose DeliveryToS3.Success {FINDINGS}"))?;
    Ok(out
        .datapoints()
        .iter()
        .filter(|d| d.timestamp().is_some())
        .max_by_key(|d| d.timestamp().copied())
        .and_then(|d| d.minimum()))
}

/// The rule's pattern and targets as found, or None without a rule.
async fn read_rule(security: &AccountConfig) -> Result<Option<(Option<Value>, Vec<String>)>, StepError> {
    let eb = security.eventbridge();
    let rule = match eb.describe_rule().name(FINDINGS).send().await {
        Ok(r) => r,
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => return Ok(None),
        Err(e) => return Err(e).aws(format!("events:DescribeRule {FINDINGS}")),
    };
    let targets =
        eb.list_targets_by_rule().rule(FINDINGS).send().await.aws(format!("events:ListTargetsByRule {FINDINGS}"))?;
    let pattern = rule.event_pattern().and_then(|p| serde_json::from_str(p).ok());
    Ok(Some((pattern, targets.targets().iter().map(|t| t.arn().to_owned()).collect())))
}

/// The role Firehose writes the findings to the logging bucket with, in the security account: its
/// trust and its S3 permissions ("deliver"), which the service-roles step makes ahead. The logging
/// key it encrypts with is the step's to add ([`ensure_findings_role`]).
fn findings_role(run: &RunInput) -> Role<'static> {
    let bucket_arn = format!("arn:aws:s3:::{}", run.logging_bucket());
    Role {
        name: FINDINGS_ROLE,
        description: "assure: Firehose writes Access Analyzer findings to the logging bucket",
        // Firehose assumes it with the stream's account as the external id, and sends no
        // aws:SourceAccount (https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html#using-iam-s3).
        trust: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": run.org.security.as_str()}}}]}),
        policy_name: "deliver",
        policy: json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:ListBucket"],
             "Resource": [bucket_arn.clone(), format!("{bucket_arn}/access-analyzer/*")]}]}),
        // Its permission on the logging key, which the access-analyzer step adds.
        keep: &["encrypt"],
    }
}

/// The role EventBridge forwards findings with, in the security account. The home region's rule
/// puts findings into the stream; the other regions' rules put them on the home region's event
/// bus, which takes a role allowed events:PutEvents on it
/// (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html).
fn events_role(run: &RunInput) -> Role<'static> {
    let security = run.org.security.as_str();
    Role {
        name: FINDINGS_EVENTS_ROLE,
        description: "assure: EventBridge forwards Access Analyzer findings to the home region and its Firehose stream",
        // Only the findings rules, in any region of the security account
        // (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html).
        trust: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": security},
                          "ArnLike": {"aws:SourceArn": format!("arn:aws:events:*:{security}:rule/{FINDINGS}")}}}]}),
        policy_name: "forward",
        policy: json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"],
             "Resource": format!("arn:aws:firehose:{}:{security}:deliverystream/{FINDINGS}", run.home_region)},
            {"Effect": "Allow", "Action": "events:PutEvents", "Resource": home_bus_arn(run)}]}),
        keep: &[],
    }
}

/// The findings role (the home region's part) with its permission on the logging key ("encrypt"),
/// and the key, which the stream takes too. The role is made ahead by the run's service-roles step,
/// else first thing in the home region's task, so that IAM propagates it while the task does the
/// rest (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
async fn ensure_findings_role(
    aws: &Aws,
    run: &RunInput,
    security: &AccountConfig,
    changes: &mut Changes,
) -> Result<(String, String), StepError> {
    let mut sec = Changes::new(security);
    let (role, made) = service_role(aws, security, &findings_role(run), &mut sec).await?;
    let key = logging_key_to_use(aws, run).await?;
    let encrypt = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key.clone()}]});
    ensure_inline_policy(security, FINDINGS_ROLE, "encrypt", &encrypt, made, &mut sec).await?;
    changes.list.extend(sec.list);
    Ok((role, key))
}

/// Findings of this region's analyzer reach the logging bucket: this region's rule sends them on
/// (see the module's doc), and in the home region the stream writes them to the bucket.
/// `new_analyzer`: the analyzer was created a moment ago, so the rule on its findings, which assure
/// only ever puts after the analyzer, is not there to read; should one be left after all (its
/// analyzer deleted by hand), PutRule and PutTargets replace it with this one, recorded as made.
async fn ensure_findings_delivery(
    aws: &Aws,
    run: &RunInput,
    security: &AccountConfig,
    new_analyzer: bool,
    findings_role: Option<(String, String)>,
    changes: &mut Changes,
) -> Result<(), StepError> {
    let mut sec = Changes::new(security);
    // IAM is global: every region's run converges on the same role.
    let (events_role, _) = service_role(aws, security, &events_role(run), &mut sec).await?;

    if let Some((role, key)) = findings_role {
        let bucket_arn = format!("arn:aws:s3:::{}", run.logging_bucket());
        let want = (bucket_arn.clone(), FINDINGS_PREFIX.to_owned(), Some(key.clone()));
        match read_stream(security).await? {
            Some(found) if found.destination == want => {}
            Some(found) => {
                // A stream's destination is changed through its version id and destination id.
                let fh = security.firehose();
                let d = fh
                    .describe_delivery_stream()
                    .delivery_stream_name(FINDINGS)
                    .send()
                    .await
                    .aws("firehose:DescribeDeliveryStream")?;
                let d = d
                    .delivery_stream_description()
                    .ok_or_else(|| StepError::internal("firehose: no stream description"))?;
                let dest = d.destinations().first().map(|x| x.destination_id().to_owned()).unwrap_or_default();
                if changes.live() {
                    let update = aws_sdk_firehose::types::ExtendedS3DestinationUpdate::builder()
                        .bucket_arn(&bucket_arn)
                        .role_arn(&role)
                        .prefix(FINDINGS_PREFIX.to_owned())
                        .encryption_configuration(encryption(&key)?)
                        .build();
                    while_role_propagates(|| {
                        fh.update_destination()
                            .delivery_stream_name(FINDINGS)
                            .current_delivery_stream_version_id(d.version_id())
                            .destination_id(&dest)
                            .extended_s3_destination_update(update.clone())
                            .send()
                    })
                    .await
                    .aws(format!("firehose:UpdateDestination {FINDINGS}"))?;
                }
                sec.push(format!("firehose:{FINDINGS}/destination"), "update", json!(found.destination), json!(want));
            }
            None => {
                if changes.live() {
                    let destination = aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
                        .bucket_arn(&bucket_arn)
                        .role_arn(&role)
                        .prefix(FINDINGS_PREFIX.to_owned())
                        .compression_format(aws_sdk_firehose::types::CompressionFormat::Gzip)
                        .encryption_configuration(encryption(&key)?)
                        .build()
                        .map_err(|e| StepError::internal(e.to_string()))?;
                    // The delivery role is ensured just above, perhaps a moment ago.
                    let res = while_role_propagates(|| {
                        security
                            .firehose()
                            .create_delivery_stream()
                            .delivery_stream_name(FINDINGS)
                            .delivery_stream_type(aws_sdk_firehose::types::DeliveryStreamType::DirectPut)
                            .extended_s3_destination_configuration(destination.clone())
                            .send()
                    })
                    .await;
                    match res {
                        Ok(_) => sec.push(format!("firehose:{FINDINGS}"), "create", Value::Null, json!(want)),
                        // Another account's run (a bulk run) created the security account's stream a
                        // moment ago, for the same bucket and key.
                        Err(e) if error_code(&e) == Some("ResourceInUseException") => {}
                        Err(e) => return Err(e).aws(format!("firehose:CreateDeliveryStream {FINDINGS}")),
                    }
                } else {
                    sec.push(format!("firehose:{FINDINGS}"), "create", Value::Null, json!(want));
                }
            }
        }
    }
    let pattern = finding_pattern();
    let target = rule_target(run, security);
    let rule = if new_analyzer { None } else { read_rule(security).await? };
    let eb = security.eventbridge();
    if rule.as_ref().map(|(p, _)| p.as_ref()) != Some(Some(&pattern)) {
        if changes.live() {
            eb.put_rule()
                .name(FINDINGS)
                .event_pattern(pattern.to_string())
                .description("assure: Access Analyzer findings to the logging bucket")
                .send()
                .await
                .aws(format!("events:PutRule {FINDINGS}"))?;
        }
        sec.push(
            format!("events:rule/{FINDINGS}"),
            if rule.is_some() { "update" } else { "create" },
            json!(rule.as_ref().map(|r| &r.0)),
            pattern,
        );
    }
    if !rule.as_ref().is_some_and(|(_, t)| t.contains(&target)) {
        if changes.live() {
            eb.put_targets()
                .rule(FINDINGS)
                .targets(
                    aws_sdk_eventbridge::types::Target::builder()
                        .id(if security.region == run.home_region { "firehose" } else { "home-region" })
                        .arn(&target)
                        .role_arn(&events_role)
                        .build()
                        .map_err(|e| StepError::internal(e.to_string()))?,
                )
                .send()
                .await
                .aws(format!("events:PutTargets {FINDINGS}"))?;
        }
        sec.push(format!("events:rule/{FINDINGS}/targets"), "update", json!(rule.map(|r| r.1)), json!([target]));
    }
    changes.list.extend(sec.list);
    Ok(())
}

fn encryption(key: &str) -> Result<aws_sdk_firehose::types::EncryptionConfiguration, StepError> {
    Ok(aws_sdk_firehose::types::EncryptionConfiguration::builder()
        .kms_encryption_config(
            aws_sdk_firehose::types::KmsEncryptionConfig::builder()
                .awskms_key_arn(key)
                .build()
                .map_err(|e| StepError::internal(e.to_string()))?,
        )
        .build())
}

/// Evidence for Access Analyzer in one region.
pub async fn evidence_for(aws: &Aws, run: &RunInput, region: &Region) -> Result<Vec<Evidence>, StepError> {
    let security = aws.account(&run.org.security, region).await?;
    let target = aws.account(&run.account, region).await?;
    let analyzer = match security.accessanalyzer().get_analyzer().analyzer_name(ANALYZER).send().await {
        Ok(o) => o.analyzer().map(|a| (a.r#type().as_str().to_owned(), a.status().as_str().to_owned())),
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => None,
        Err(e) => return Err(e).aws(format!("access-analyzer:GetAnalyzer {ANALYZER}")),
    };
    let rule = read_rule(&security).await?;
    let target_arn = rule_target(run, &security);
    let routed = rule.as_ref().is_some_and(|(p, t)| p.as_ref() == Some(&finding_pattern()) && t.contains(&target_arn));
    // An analyzer is CREATING first (https://docs.aws.amazon.com/access-analyzer/latest/APIReference/API_AnalyzerSummary.html).
    let analyzer_evidence = evidence(
        &security,
        &catalogue::ORGANIZATION,
        format!("access-analyzer:analyzer/{ANALYZER}"),
        analyzer.as_ref().is_some_and(|(t, s)| t == "ORGANIZATION" && s == "ACTIVE"),
        format!("analyzer (type, status): {analyzer:?}"),
    )
    .pending_if(analyzer.as_ref().is_some_and(|(t, s)| t == "ORGANIZATION" && s == "CREATING"));
    let delivery = if region != &run.home_region {
        // Delivered means sent on to the home region's bus; the home region's evidence covers the
        // rest of the way (its rule, the stream and what the stream writes).
        evidence(
            &security,
            &catalogue::FINDINGS_DELIVERED,
            format!("events:rule/{FINDINGS}"),
            routed,
            format!(
                "rule pattern is the findings': {}; rule targets: {:?} (want the {} event bus; the stream is checked there)",
                rule.as_ref().is_some_and(|(p, _)| p.as_ref() == Some(&finding_pattern())),
                rule.as_ref().map(|r| &r.1),
                run.home_region
            ),
        )
    } else {
        let stream = read_stream(&security).await?;
        let configured = routed
            && stream.as_ref().is_some_and(|s| {
                s.destination.0 == format!("arn:aws:s3:::{}", run.logging_bucket())
                    && s.destination.1 == FINDINGS_PREFIX
            });
        let success = if stream.is_some() { latest_delivery_success(&security).await? } else { None };
        let healthy = stream.as_ref().is_some_and(|s| s.status == "ACTIVE" && s.failure.is_none())
            && success.is_none_or(|share| share >= 1.0);
        // Delivered means configured to reach the bucket and reaching it: the stream is ACTIVE with
        // no failure, and its latest writes to S3 succeeded. A stream is CREATING first
        // (https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html).
        let creating = configured && stream.as_ref().is_some_and(|s| s.status == "CREATING");
        evidence(
            &security,
            &catalogue::FINDINGS_DELIVERED,
            format!("events:rule/{FINDINGS}"),
            configured && healthy,
            format!(
                "stream destination (bucket, prefix, key): {:?}; rule targets: {:?}; stream status: {:?}; \
                 failure: {:?}; latest DeliveryToS3.Success in the last 24 h: {}",
                stream.as_ref().map(|s| &s.destination),
                rule.map(|r| r.1),
                stream.as_ref().map(|s| &s.status),
                stream.as_ref().and_then(|s| s.failure.as_ref()),
                success.map_or("none (nothing delivered)".to_owned(), |v| v.to_string())
            ),
        )
        .pending_if(creating)
    };
    let mut out = vec![analyzer_evidence, delivery];
    if region == &run.home_region {
        let role = match target.iam().get_role().role_name(SLR).send().await {
            Ok(_) => true,
            Err(e) if error_code(&e) == Some("NoSuchEntity") => false,
            Err(e) => return Err(e).aws(format!("iam:GetRole {SLR}")),
        };
        out.push(evidence(
            &target,
            &catalogue::SERVICE_LINKED_ROLE,
            format!("iam:role/{SLR}"),
            role,
            format!("role exists: {role}"),
        ));
    }
    Ok(out)
}

/// The Access Analyzer control: organization analyzers per region, findings to the logging bucket.
pub const CONTROL: Control = Control {
    name: "access-analyzer",
    steps: &[StepName::AccessAnalyzer],
    catalogue: catalogue::ENTRIES,
    snapshot: None,
    permissions: permissions::PERMISSIONS,
    ahead: Ahead {
        preflight: |aws, run| Box::pin(preflight(aws, run)),
        service_roles,
        organize: |aws, run, region| {
            Box::pin(organized(aws, run, region, |a, r, g, c| Box::pin(organize_region(a, r, g, c))))
        },
    },
    apply: |call| Box::pin(apply(call.aws, call.run, call.region)),
    evidence: |aws, run, region| Box::pin(evidence_for(aws, run, region)),
    compensate: |undo, region, report| Box::pin(compensate(undo, region, report)),
};

/// The security account's findings roles, unless a bulk run's organization step made them.
fn service_roles(run: &RunInput) -> Vec<ServiceRole> {
    if run.organization.is_some() {
        return Vec::new();
    }
    [findings_role(run), events_role(run)]
        .into_iter()
        .map(|role| ServiceRole { account: run.org.security.clone(), role })
        .collect()
}

/// The analyzers serve the organization and stay; only the service-linked role is the account's.
async fn compensate(undo: &Undo<'_>, region: &Region, report: &mut Report) -> Result<(), StepError> {
    if region == &undo.run.home_region {
        report.not_restorable.push(format!(
            "access-analyzer: the service-linked role {SLR} in {} stays (AWS owns it)",
            undo.run.account
        ));
    }
    Ok(())
}

//! Rollback: compensate a run's completed steps in reverse order, from the snapshots its
//! checkpoints recorded, so the account's configuration equals its configuration before
//! onboarding. What cannot be restored is reported by name, never forced:
//! - membership under a foreign GuardDuty administrator (only that administrator can invite again);
//! - a GuardDuty detector assure created (deleting it would delete its findings);
//! - the `assure/cloudtrail` log group (it holds log data; the trail's logs also stay in the bucket);
//! - service-linked roles (AWS services own them).
//!
//! Shared resources stay: the logging bucket and key, the organization's delegated administrators,
//! analyzers, aggregator and findings delivery serve every account.

use assure_contract::{Region, RunInput, StepError, StepName};
use serde::Serialize;
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::checkpoint::{Record, Status, Store};
use crate::steps::discover::SESSION_PREFERENCES_DOCUMENT as DOC;
use crate::steps::names::{ALARM_PREFIX, ALARM_TOPIC, SCP_PROTECT, SCP_ROOT, TRAIL, TRAIL_LOGS_ROLE, TRAIL_LOG_GROUP};

/// What a rollback did and could not do.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub restored: Vec<String>,
    pub not_restorable: Vec<String>,
}

fn snapshot<'a>(records: &'a [Record], step: StepName, region: &Region) -> Option<&'a Value> {
    records
        .iter()
        .find(|r| r.step == step && &r.region == region && r.status == Status::Completed)
        .and_then(|r| r.output.as_ref())
        .map(|o| &o.snapshot)
}

fn done(records: &[Record], step: StepName) -> bool {
    records.iter().any(|r| r.step == step && r.status != Status::Running)
}

/// Rolls back `run` from its checkpoints.
pub async fn run(aws: &Aws, run: &RunInput) -> Result<Report, StepError> {
    let records = Store::new(aws).list(run.run_id.as_str()).await?;
    if records.is_empty() {
        return Err(StepError::invalid_input(format!("run {}: no checkpoints, nothing to roll back", run.run_id)));
    }
    let mut report = Report::default();
    let home = &run.home_region;
    let target = aws.account(&run.account, home).await?;
    if done(&records, StepName::Scps) {
        let mgmt = aws.account(&run.org.management, home).await?;
        let orgs = mgmt.organizations();
        for (name, id) in crate::steps::scps::attached_scps(&orgs, &run.account).await? {
            if name == SCP_PROTECT || name == SCP_ROOT {
                orgs.detach_policy()
                    .policy_id(&id)
                    .target_id(run.account.as_str())
                    .send()
                    .await
                    .aws("organizations:DetachPolicy")?;
                report.restored.push(format!("scps: detached {name} from {}", run.account));
            }
        }
    }
    for region in &run.regions {
        let acct = target.in_region(region);
        let before = snapshot(&records, StepName::Discover, region).cloned().unwrap_or(Value::Null);
        if done(&records, StepName::SessionManager) {
            restore_session_preferences(&acct, &before["sessionManager"], &mut report).await?;
        }
        if done(&records, StepName::Config) {
            restore_config(&acct, &before["config"], &mut report).await?;
        }
        if done(&records, StepName::GuardDuty) || done(&records, StepName::StopGuardDuty) {
            restore_guardduty(aws, run, &acct, &before["guardduty"], &mut report).await?;
        }
        if done(&records, StepName::AccessAnalyzer) && region == home {
            report.not_restorable.push(format!(
                "access-analyzer: the service-linked role AWSServiceRoleForAccessAnalyzer in {} stays (AWS owns it)",
                run.account
            ));
        }
        if done(&records, StepName::Config) && region == home {
            report.not_restorable.push(format!(
                "config: the service-linked role AWSServiceRoleForConfig in {} stays (AWS owns it)",
                run.account
            ));
        }
    }
    if done(&records, StepName::Alarms) {
        remove_alarms(&target, &mut report).await?;
    }
    if done(&records, StepName::StopCloudTrail) {
        let stopped =
            snapshot(&records, StepName::StopCloudTrail, home).map(|s| s["stopped"].clone()).unwrap_or(Value::Null);
        for arn in stopped.as_array().into_iter().flatten().filter_map(Value::as_str) {
            target.cloudtrail().start_logging().name(arn).send().await.aws(format!("cloudtrail:StartLogging {arn}"))?;
            report.restored.push(format!("cloudtrail: {arn} logging again"));
        }
    }
    if done(&records, StepName::CloudTrail) {
        remove_trail(&target, &mut report).await?;
    }
    Ok(report)
}

async fn restore_session_preferences(
    acct: &AccountConfig,
    before: &Value,
    report: &mut Report,
) -> Result<(), StepError> {
    let ssm = acct.ssm();
    let now = crate::steps::discover::session_preferences(acct).await?;
    if &now == before {
        return Ok(());
    }
    if before.is_null() {
        ssm.delete_document().name(DOC).send().await.aws(format!("ssm:DeleteDocument {DOC}"))?;
        report.restored.push(format!("session-manager {}: preferences removed (there were none)", acct.region));
        return Ok(());
    }
    crate::steps::session_manager::write_preferences(acct, before).await?;
    report.restored.push(format!("session-manager {}: the account's own preferences", acct.region));
    Ok(())
}

async fn restore_config(acct: &AccountConfig, before: &Value, report: &mut Report) -> Result<(), StepError> {
    let c = acct.config();
    let region = &acct.region;
    match before["recorders"].as_array().and_then(|r| r.first()) {
        Some(rec) => {
            let name = rec["name"].as_str().unwrap_or_default();
            c.put_configuration_recorder()
                .configuration_recorder(
                    aws_sdk_config::types::ConfigurationRecorder::builder()
                        .name(name)
                        .set_role_arn(rec["roleArn"].as_str().map(str::to_owned))
                        .recording_group(
                            aws_sdk_config::types::RecordingGroup::builder()
                                .all_supported(rec["allSupported"].as_bool().unwrap_or(false))
                                .include_global_resource_types(
                                    rec["includeGlobalResourceTypes"].as_bool().unwrap_or(false),
                                )
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await
                .aws("config:PutConfigurationRecorder")?;
            if let Some(ch) = before["deliveryChannels"].as_array().and_then(|d| d.first()) {
                c.put_delivery_channel()
                    .delivery_channel(
                        aws_sdk_config::types::DeliveryChannel::builder()
                            .set_name(ch["name"].as_str().map(str::to_owned))
                            .set_s3_bucket_name(ch["s3BucketName"].as_str().map(str::to_owned))
                            .set_s3_key_prefix(ch["s3KeyPrefix"].as_str().map(str::to_owned))
                            .set_sns_topic_arn(ch["snsTopicARN"].as_str().map(str::to_owned))
                            .build(),
                    )
                    .send()
                    .await
                    .aws("config:PutDeliveryChannel")?;
            }
            if rec["recording"] == false {
                c.stop_configuration_recorder()
                    .configuration_recorder_name(name)
                    .send()
                    .await
                    .aws("config:StopConfigurationRecorder")?;
            }
            report.restored.push(format!("config {region}: recorder {name} and its delivery channel as they were"));
        }
        None => {
            let recs =
                c.describe_configuration_recorders().send().await.aws("config:DescribeConfigurationRecorders")?;
            for r in recs.configuration_recorders() {
                let name = r.name().unwrap_or_default();
                c.stop_configuration_recorder()
                    .configuration_recorder_name(name)
                    .send()
                    .await
                    .aws("config:StopConfigurationRecorder")?;
                let chans = c.describe_delivery_channels().send().await.aws("config:DescribeDeliveryChannels")?;
                for ch in chans.delivery_channels() {
                    c.delete_delivery_channel()
                        .delivery_channel_name(ch.name().unwrap_or_default())
                        .send()
                        .await
                        .aws("config:DeleteDeliveryChannel")?;
                }
                c.delete_configuration_recorder()
                    .configuration_recorder_name(name)
                    .send()
                    .await
                    .aws("config:DeleteConfigurationRecorder")?;
                report.restored.push(format!("config {region}: recorder {name} removed (there was none; its history stays in the logging bucket)"));
            }
        }
    }
    Ok(())
}

async fn restore_guardduty(
    aws: &Aws,
    run: &RunInput,
    acct: &AccountConfig,
    before: &Value,
    report: &mut Report,
) -> Result<(), StepError> {
    let region = &acct.region;
    let gd = acct.guardduty();
    let ids = gd.list_detectors().send().await.aws("guardduty:ListDetectors")?;
    let Some(det) = ids.detector_ids().first().cloned() else { return Ok(()) };
    // Leave the security account's administration.
    let security = aws.account(&run.org.security, region).await?;
    let sgd = security.guardduty();
    if let Some(sdet) =
        sgd.list_detectors().send().await.aws("guardduty:ListDetectors")?.detector_ids().first().cloned()
    {
        let members = sgd
            .get_members()
            .detector_id(&sdet)
            .account_ids(run.account.as_str())
            .send()
            .await
            .aws("guardduty:GetMembers")?;
        if !members.members().is_empty() {
            sgd.disassociate_members()
                .detector_id(&sdet)
                .account_ids(run.account.as_str())
                .send()
                .await
                .aws("guardduty:DisassociateMembers")?;
            sgd.delete_members()
                .detector_id(&sdet)
                .account_ids(run.account.as_str())
                .send()
                .await
                .aws("guardduty:DeleteMembers")?;
            report
                .restored
                .push(format!("guardduty {region}: {} is no longer a member of the security account", run.account));
        }
    }
    match before.as_array().and_then(|d| d.first()) {
        Some(d) => {
            if let Some(admin) = d["administrator"]["accountId"].as_str() {
                report.not_restorable.push(format!(
                    "guardduty {region}: membership under the foreign administrator {admin} (only {admin} can invite the account again)"
                ));
            }
            let was_enabled = d["status"] == "ENABLED";
            let mut update = gd.update_detector().detector_id(&det).enable(was_enabled);
            if let Some(f) = d["findingPublishingFrequency"].as_str() {
                update =
                    update.finding_publishing_frequency(aws_sdk_guardduty::types::FindingPublishingFrequency::from(f));
            }
            update.send().await.aws("guardduty:UpdateDetector")?;
            report.restored.push(format!("guardduty {region}: detector {det} settings as they were"));
        }
        None => report.not_restorable.push(format!(
            "guardduty {region}: detector {det}, created by assure, stays (deleting it would delete its findings)"
        )),
    }
    Ok(())
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
    Ok(())
}

async fn remove_trail(acct: &AccountConfig, report: &mut Report) -> Result<(), StepError> {
    let ct = acct.cloudtrail();
    match ct.stop_logging().name(TRAIL).send().await {
        Ok(_) => {}
        Err(e) if error_code(&e) == Some("TrailNotFoundException") => return Ok(()),
        Err(e) => return Err(e).aws("cloudtrail:StopLogging"),
    }
    ct.delete_trail().name(TRAIL).send().await.aws("cloudtrail:DeleteTrail")?;
    report.restored.push(format!("cloudtrail: {TRAIL} removed (its logs stay in the logging bucket)"));
    let iam = acct.iam();
    if iam.delete_role_policy().role_name(TRAIL_LOGS_ROLE).policy_name("deliver").send().await.is_ok() {
        iam.delete_role().role_name(TRAIL_LOGS_ROLE).send().await.aws("iam:DeleteRole")?;
    }
    report.not_restorable.push(format!("cloudtrail: the log group {TRAIL_LOG_GROUP} stays (it holds log data)"));
    Ok(())
}

/// The account's configuration in the fields rollback restores, for comparing before and after.
pub async fn configuration(aws: &Aws, run: &RunInput) -> Result<Value, StepError> {
    let target = aws.account(&run.account, &run.home_region).await?;
    let mut regions = serde_json::Map::new();
    for region in &run.regions {
        let acct = target.in_region(region);
        regions.insert(
            region.to_string(),
            json!({
                "guardduty": crate::steps::discover::guardduty(&acct).await?,
                "config": crate::steps::discover::config(&acct).await?,
                "cloudtrail": crate::steps::discover::trails(&acct).await?,
                "sessionManager": crate::steps::discover::session_preferences(&acct).await?,
            }),
        );
    }
    let mgmt = aws.account(&run.org.management, &run.home_region).await?;
    let scps = crate::steps::scps::attached_scps(&mgmt.organizations(), &run.account).await?;
    Ok(json!({"regions": regions, "scps": scps}))
}

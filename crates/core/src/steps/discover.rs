//! Discover: the role works in this region, and what security setup the account already has here.
//! Read-only. Its snapshot is the "before" of the region: what the later steps take over and what a
//! rollback restores.

use assure_contract::{Region, RunInput, StepError, StepName, StepOutput};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};

/// The session preferences document Session Manager reads.
pub const SESSION_PREFERENCES_DOCUMENT: &str = "SSM-SessionManagerRunShell";

pub async fn run(aws: &Aws, run: &RunInput, region: &Region) -> Result<StepOutput, StepError> {
    let target = aws.account(&run.account, region).await?;
    let who = target.sts().get_caller_identity().send().await.aws(format!("sts:GetCallerIdentity in {region}"))?;
    if who.account() != Some(run.account.as_str()) {
        return Err(StepError::invalid_input(format!(
            "roleName: the role acts as account {} in {region}, not {}",
            who.account().unwrap_or("?"),
            run.account
        )));
    }
    let (guardduty, config, trails, session) =
        tokio::try_join!(guardduty(&target), config(&target), trails(&target), session_preferences(&target),)?;
    let summary = format!(
        "{region}: {} GuardDuty detector(s){}, {} Config recorder(s), {} trail(s) homed here, session preferences {}",
        guardduty.as_array().map_or(0, Vec::len),
        if guardduty.as_array().is_some_and(|d| d.iter().any(|d| !d["administrator"].is_null())) {
            " under an administrator"
        } else {
            ""
        },
        config["recorders"].as_array().map_or(0, Vec::len),
        trails.as_array().map_or(0, Vec::len),
        if session.is_null() { "absent" } else { "present" },
    );
    Ok(StepOutput {
        step: StepName::Discover,
        region: region.clone(),
        summary,
        changes: vec![],
        evidence: vec![],
        snapshot: json!({
            "region": region,
            "guardduty": guardduty,
            "config": config,
            "cloudtrail": trails,
            "sessionManager": session,
        }),
    })
}

/// Every detector with its settings, administrator, filters and publishing destinations.
pub async fn guardduty(target: &AccountConfig) -> Result<Value, StepError> {
    let gd = target.guardduty();
    let ids = gd.list_detectors().send().await.aws("guardduty:ListDetectors")?;
    let mut out = Vec::new();
    for id in ids.detector_ids() {
        let d = gd.get_detector().detector_id(id).send().await.aws("guardduty:GetDetector")?;
        let admin =
            gd.get_administrator_account().detector_id(id).send().await.aws("guardduty:GetAdministratorAccount")?;
        let filters = gd.list_filters().detector_id(id).send().await.aws("guardduty:ListFilters")?;
        let dests = gd
            .list_publishing_destinations()
            .detector_id(id)
            .send()
            .await
            .aws("guardduty:ListPublishingDestinations")?;
        out.push(json!({
            "detectorId": id,
            "status": d.status().map(|s| s.as_str()),
            "findingPublishingFrequency": d.finding_publishing_frequency().map(|f| f.as_str()),
            // `administrator` is required in the API model, so the SDK shows "none" as an empty one.
            "administrator": admin.administrator().filter(|a| a.account_id().is_some()).map(|a| json!({
                "accountId": a.account_id(),
                "relationshipStatus": a.relationship_status(),
            })),
            "filters": filters.filter_names(),
            "publishingDestinations": dests.destinations().iter().map(|d| d.destination_id()).collect::<Vec<_>>(),
        }));
    }
    Ok(Value::Array(out))
}

/// Recorders (with their status) and delivery channels.
pub async fn config(target: &AccountConfig) -> Result<Value, StepError> {
    let c = target.config();
    let recorders = c.describe_configuration_recorders().send().await.aws("config:DescribeConfigurationRecorders")?;
    let status =
        c.describe_configuration_recorder_status().send().await.aws("config:DescribeConfigurationRecorderStatus")?;
    let channels = c.describe_delivery_channels().send().await.aws("config:DescribeDeliveryChannels")?;
    let recorders: Vec<Value> = recorders
        .configuration_recorders()
        .iter()
        .map(|r| {
            let running =
                status.configuration_recorders_status().iter().find(|s| s.name() == r.name()).map(|s| s.recording());
            json!({
                "name": r.name(),
                "roleArn": r.role_arn(),
                "allSupported": r.recording_group().map(|g| g.all_supported()),
                "includeGlobalResourceTypes": r.recording_group().map(|g| g.include_global_resource_types()),
                "recording": running,
            })
        })
        .collect();
    let channels: Vec<Value> = channels
        .delivery_channels()
        .iter()
        .map(|d| {
            json!({
                "name": d.name(),
                "s3BucketName": d.s3_bucket_name(),
                "s3KeyPrefix": d.s3_key_prefix(),
                "snsTopicARN": d.sns_topic_arn(),
            })
        })
        .collect();
    Ok(json!({"recorders": recorders, "deliveryChannels": channels}))
}

/// Trails homed in this region (a multi-region trail appears once, in its home region), with status.
pub async fn trails(target: &AccountConfig) -> Result<Value, StepError> {
    let ct = target.cloudtrail();
    let trails = ct.describe_trails().include_shadow_trails(false).send().await.aws("cloudtrail:DescribeTrails")?;
    let mut out = Vec::new();
    for t in trails.trail_list() {
        let arn = t.trail_arn().unwrap_or_default();
        let status = ct.get_trail_status().name(arn).send().await.aws("cloudtrail:GetTrailStatus")?;
        out.push(json!({
            "name": t.name(),
            "arn": arn,
            "homeRegion": t.home_region(),
            "s3BucketName": t.s3_bucket_name(),
            "isMultiRegionTrail": t.is_multi_region_trail(),
            "isOrganizationTrail": t.is_organization_trail(),
            "logFileValidationEnabled": t.log_file_validation_enabled(),
            "kmsKeyId": t.kms_key_id(),
            "isLogging": status.is_logging(),
        }));
    }
    Ok(Value::Array(out))
}

/// The Session Manager preferences document's content, or null when the account has none.
pub async fn session_preferences(target: &AccountConfig) -> Result<Value, StepError> {
    let res = target.ssm().get_document().name(SESSION_PREFERENCES_DOCUMENT).send().await;
    match res {
        Ok(doc) => {
            let content = doc.content().unwrap_or_default();
            Ok(serde_json::from_str(content).unwrap_or_else(|_| Value::String(content.to_owned())))
        }
        Err(e) if error_code(&e) == Some("InvalidDocument") => Ok(Value::Null),
        Err(e) => Err(e).aws(format!("ssm:GetDocument {SESSION_PREFERENCES_DOCUMENT}")),
    }
}

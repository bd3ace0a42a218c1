//! A trail recorded whole, as CloudTrail describes it: the trail (DescribeTrails), its event
//! selectors, basic or advanced (GetEventSelectors), its Insights selectors (GetInsightSelectors),
//! its tags (ListTags) and whether it was logging (GetTrailStatus). What rollback needs to recreate
//! a retired trail exactly: same name and home region (so the same ARN), same settings.

use aws_sdk_cloudtrail::types::{
    AdvancedEventSelector, AdvancedFieldSelector, DataResource, EventSelector, InsightSelector, InsightType,
    ReadWriteType, SourceEventCategory, Tag, Trail,
};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, AwsResultExt};
use assure_contract::StepError;

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// Everything about the trail `t`, read in its home region through `home`.
pub async fn read(home: &AccountConfig, t: &Trail) -> Result<Value, StepError> {
    let ct = home.cloudtrail();
    let arn = t.trail_arn().unwrap_or_default();
    let status = ct.get_trail_status().name(arn).send().await.aws(format!("cloudtrail:GetTrailStatus {arn}"))?;
    let sel =
        ct.get_event_selectors().trail_name(arn).send().await.aws(format!("cloudtrail:GetEventSelectors {arn}"))?;
    // A trail without Insights answers InsightNotEnabledException
    // (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetInsightSelectors.html).
    let insights = match ct.get_insight_selectors().trail_name(arn).send().await {
        Ok(o) => o
            .insight_selectors()
            .iter()
            .map(|i| {
                json!({"insightType": i.insight_type().map(|t| t.as_str()),
                       "eventCategories": i.event_categories().iter().map(|c| c.as_str()).collect::<Vec<_>>()})
            })
            .collect(),
        Err(e) if error_code(&e) == Some("InsightNotEnabledException") => Vec::new(),
        Err(e) => return Err(e).aws(format!("cloudtrail:GetInsightSelectors {arn}")),
    };
    let tags = ct.list_tags().resource_id_list(arn).send().await.aws(format!("cloudtrail:ListTags {arn}"))?;
    let tags: Vec<Value> = tags
        .resource_tag_list()
        .iter()
        .flat_map(|r| r.tags_list())
        .map(|t| json!({"key": t.key(), "value": t.value()}))
        .collect();
    Ok(json!({
        "name": t.name(),
        "trailArn": arn,
        "homeRegion": t.home_region(),
        "s3BucketName": t.s3_bucket_name(),
        "s3KeyPrefix": t.s3_key_prefix(),
        "snsTopicArn": t.sns_topic_arn(),
        "includeGlobalServiceEvents": t.include_global_service_events(),
        "isMultiRegionTrail": t.is_multi_region_trail(),
        "isOrganizationTrail": t.is_organization_trail(),
        "logFileValidationEnabled": t.log_file_validation_enabled(),
        "cloudWatchLogsLogGroupArn": t.cloud_watch_logs_log_group_arn(),
        "cloudWatchLogsRoleArn": t.cloud_watch_logs_role_arn(),
        "kmsKeyId": t.kms_key_id(),
        "isLogging": status.is_logging(),
        "eventSelectors": sel.event_selectors().iter().map(|s| json!({
            "readWriteType": s.read_write_type().map(|t| t.as_str()),
            "includeManagementEvents": s.include_management_events(),
            "dataResources": s.data_resources().iter().map(|d| json!({"type": d.r#type(), "values": d.values()})).collect::<Vec<_>>(),
            "excludeManagementEventSources": s.exclude_management_event_sources(),
        })).collect::<Vec<_>>(),
        "advancedEventSelectors": sel.advanced_event_selectors().iter().map(|a| json!({
            "name": a.name(),
            "fieldSelectors": a.field_selectors().iter().map(|f| json!({
                "field": f.field(), "equals": f.equals(), "startsWith": f.starts_with(), "endsWith": f.ends_with(),
                "notEquals": f.not_equals(), "notStartsWith": f.not_starts_with(), "notEndsWith": f.not_ends_with(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "insightSelectors": insights,
        "tags": tags,
    }))
}

/// Creates the trail `r` (a [`read`] record) again in its home region through `home`, with every
/// setting, selector and tag it had, logging if it was.
pub async fn recreate(home: &AccountConfig, r: &Value) -> Result<(), StepError> {
    let ct = home.cloudtrail();
    let name = r["name"].as_str().unwrap_or_default();
    let tags: Vec<Tag> = r["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Tag::builder().set_key(text(&t["key"])).set_value(text(&t["value"])).build().ok())
        .collect();
    crate::aws::while_role_propagates(|| {
        ct.create_trail()
            .name(name)
            .set_s3_bucket_name(text(&r["s3BucketName"]))
            .set_s3_key_prefix(text(&r["s3KeyPrefix"]))
            // CreateTrail's SnsTopicName takes the topic's name or ARN.
            .set_sns_topic_name(text(&r["snsTopicArn"]))
            .set_include_global_service_events(r["includeGlobalServiceEvents"].as_bool())
            .set_is_multi_region_trail(r["isMultiRegionTrail"].as_bool())
            .set_enable_log_file_validation(r["logFileValidationEnabled"].as_bool())
            .set_cloud_watch_logs_log_group_arn(text(&r["cloudWatchLogsLogGroupArn"]))
            .set_cloud_watch_logs_role_arn(text(&r["cloudWatchLogsRoleArn"]))
            .set_kms_key_id(text(&r["kmsKeyId"]))
            .set_tags_list((!tags.is_empty()).then(|| tags.clone()))
            .send()
    })
    .await
    .aws(format!("cloudtrail:CreateTrail {name} (recreating the account's own trail)"))?;
    let advanced: Vec<AdvancedEventSelector> = r["advancedEventSelectors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let fields = a["fieldSelectors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    AdvancedFieldSelector::builder()
                        .field(f["field"].as_str().unwrap_or_default())
                        .set_equals(Some(strings(&f["equals"])).filter(|v| !v.is_empty()))
                        .set_starts_with(Some(strings(&f["startsWith"])).filter(|v| !v.is_empty()))
                        .set_ends_with(Some(strings(&f["endsWith"])).filter(|v| !v.is_empty()))
                        .set_not_equals(Some(strings(&f["notEquals"])).filter(|v| !v.is_empty()))
                        .set_not_starts_with(Some(strings(&f["notStartsWith"])).filter(|v| !v.is_empty()))
                        .set_not_ends_with(Some(strings(&f["notEndsWith"])).filter(|v| !v.is_empty()))
                        .build()
                        .map_err(|e| StepError::internal(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            AdvancedEventSelector::builder()
                .set_name(text(&a["name"]))
                .set_field_selectors(Some(fields))
                .build()
                .map_err(|e| StepError::internal(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let basic: Vec<EventSelector> = r["eventSelectors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            EventSelector::builder()
                .set_read_write_type(s["readWriteType"].as_str().map(ReadWriteType::from))
                .set_include_management_events(s["includeManagementEvents"].as_bool())
                .set_data_resources(Some(
                    s["dataResources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|d| {
                            DataResource::builder()
                                .set_type(text(&d["type"]))
                                .set_values(Some(strings(&d["values"])))
                                .build()
                        })
                        .collect(),
                ))
                .set_exclude_management_event_sources(Some(strings(&s["excludeManagementEventSources"])))
                .build()
        })
        .collect();
    let put = ct.put_event_selectors().trail_name(name);
    let put = if advanced.is_empty() {
        put.set_event_selectors(Some(basic))
    } else {
        put.set_advanced_event_selectors(Some(advanced))
    };
    put.send().await.aws(format!("cloudtrail:PutEventSelectors {name}"))?;
    let insights: Vec<InsightSelector> = r["insightSelectors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            InsightSelector::builder()
                .set_insight_type(i["insightType"].as_str().map(InsightType::from))
                // Only where the trail had them: an empty list reads back as one.
                .set_event_categories(
                    Some(
                        strings(&i["eventCategories"]).iter().map(|c| SourceEventCategory::from(c.as_str())).collect(),
                    )
                    .filter(|c: &Vec<SourceEventCategory>| !c.is_empty()),
                )
                .build()
        })
        .collect();
    if !insights.is_empty() {
        ct.put_insight_selectors()
            .trail_name(name)
            .set_insight_selectors(Some(insights))
            .send()
            .await
            .aws(format!("cloudtrail:PutInsightSelectors {name}"))?;
    }
    if r["isLogging"] == true {
        ct.start_logging().name(name).send().await.aws(format!("cloudtrail:StartLogging {name}"))?;
    }
    Ok(())
}

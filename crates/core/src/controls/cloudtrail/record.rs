//! A trail recorded whole, as CloudTrail describes it: the trail (DescribeTrails), its event
//! selectors, basic or advanced (GetEventSelectors), its Insights selectors (GetInsightSelectors),
//! its tags (ListTags) and whether it was logging (GetTrailStatus). What rollback needs to recreate
//! a retired trail exactly: same name and home region (so the same ARN), same settings.

use aws_sdk_cloudtrail::types::{
    AdvancedEventSelector, AdvancedFieldSelector, DataResource, EventSelector, InsightSelector, InsightType,
    ReadWriteType, SourceEventCategory, Tag, Trail,
};
use serde::{Deserialize, Serialize};

use crate::aws::{error_code, AccountConfig, AwsResultExt};
use assure_contract::StepError;

/// A trail as [`read`] recorded it, in CloudTrail's own words (its fields are those of
/// DescribeTrails, GetTrailStatus, GetEventSelectors, GetInsightSelectors and ListTags, camelCase).
/// Every field defaults, so a record an earlier version wrote reads back whatever it left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedTrail {
    pub name: Option<String>,
    pub trail_arn: String,
    pub home_region: Option<String>,
    pub s3_bucket_name: Option<String>,
    pub s3_key_prefix: Option<String>,
    pub sns_topic_arn: Option<String>,
    pub include_global_service_events: Option<bool>,
    pub is_multi_region_trail: Option<bool>,
    pub is_organization_trail: Option<bool>,
    pub log_file_validation_enabled: Option<bool>,
    pub cloud_watch_logs_log_group_arn: Option<String>,
    pub cloud_watch_logs_role_arn: Option<String>,
    pub kms_key_id: Option<String>,
    pub is_logging: Option<bool>,
    pub event_selectors: Vec<RecordedEventSelector>,
    pub advanced_event_selectors: Vec<RecordedAdvancedSelector>,
    pub insight_selectors: Vec<RecordedInsightSelector>,
    pub tags: Vec<RecordedTag>,
}

/// A basic event selector (GetEventSelectors' `EventSelectors`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedEventSelector {
    pub read_write_type: Option<String>,
    pub include_management_events: Option<bool>,
    pub data_resources: Vec<RecordedDataResource>,
    pub exclude_management_event_sources: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordedDataResource {
    pub r#type: Option<String>,
    pub values: Vec<String>,
}

/// An advanced event selector (GetEventSelectors' `AdvancedEventSelectors`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedAdvancedSelector {
    pub name: Option<String>,
    pub field_selectors: Vec<RecordedFieldSelector>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedFieldSelector {
    pub field: String,
    pub equals: Vec<String>,
    pub starts_with: Vec<String>,
    pub ends_with: Vec<String>,
    pub not_equals: Vec<String>,
    pub not_starts_with: Vec<String>,
    pub not_ends_with: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedInsightSelector {
    pub insight_type: Option<String>,
    pub event_categories: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordedTag {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// What the stop-cloudtrail step did with the account's own trails: its snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OwnTrails {
    /// Trails stopped (`existingTrails: stop`), to log again on rollback.
    pub stopped: Vec<StoppedTrail>,
    /// Trails retired (deleted), recorded whole, to recreate on rollback.
    pub retired: Vec<RecordedTrail>,
    /// Trails left alone, and why (another account's organization trail).
    pub left_alone: Vec<LeftAlone>,
}

/// A trail the step stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoppedTrail {
    /// Its ARN and home region.
    At {
        arn: String,
        #[serde(rename = "homeRegion")]
        home_region: Option<String>,
    },
    /// An ARN alone, as an earlier version recorded it: homed in the run's home region.
    Arn(String),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeftAlone {
    pub arn: String,
    pub reason: String,
}

fn owned(v: Option<&str>) -> Option<String> {
    v.map(str::to_owned)
}

/// Everything about the trail `t`, read in its home region through `home`.
pub async fn read(home: &AccountConfig, t: &Trail) -> Result<RecordedTrail, StepError> {
    let ct = home.cloudtrail();
    let arn = t.trail_arn().unwrap_or_default();
    let status = ct.get_trail_status().name(arn).send().await.aws(format!("cloudtrail:GetTrailStatus {arn}"))?;
    let sel =
        ct.get_event_selectors().trail_name(arn).send().await.aws(format!("cloudtrail:GetEventSelectors {arn}"))?;
    // A trail without Insights answers InsightNotEnabledException
    // (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetInsightSelectors.html).
    let insight_selectors = match ct.get_insight_selectors().trail_name(arn).send().await {
        Ok(o) => o
            .insight_selectors()
            .iter()
            .map(|i| RecordedInsightSelector {
                insight_type: owned(i.insight_type().map(|t| t.as_str())),
                event_categories: i.event_categories().iter().map(|c| c.as_str().to_owned()).collect(),
            })
            .collect(),
        Err(e) if error_code(&e) == Some("InsightNotEnabledException") => Vec::new(),
        Err(e) => return Err(e).aws(format!("cloudtrail:GetInsightSelectors {arn}")),
    };
    let tags = ct.list_tags().resource_id_list(arn).send().await.aws(format!("cloudtrail:ListTags {arn}"))?;
    let tags = tags
        .resource_tag_list()
        .iter()
        .flat_map(|r| r.tags_list())
        .map(|t| RecordedTag { key: Some(t.key().to_owned()), value: owned(t.value()) })
        .collect();
    Ok(RecordedTrail {
        name: owned(t.name()),
        trail_arn: arn.to_owned(),
        home_region: owned(t.home_region()),
        s3_bucket_name: owned(t.s3_bucket_name()),
        s3_key_prefix: owned(t.s3_key_prefix()),
        sns_topic_arn: owned(t.sns_topic_arn()),
        include_global_service_events: t.include_global_service_events(),
        is_multi_region_trail: t.is_multi_region_trail(),
        is_organization_trail: t.is_organization_trail(),
        log_file_validation_enabled: t.log_file_validation_enabled(),
        cloud_watch_logs_log_group_arn: owned(t.cloud_watch_logs_log_group_arn()),
        cloud_watch_logs_role_arn: owned(t.cloud_watch_logs_role_arn()),
        kms_key_id: owned(t.kms_key_id()),
        is_logging: status.is_logging(),
        event_selectors: sel
            .event_selectors()
            .iter()
            .map(|s| RecordedEventSelector {
                read_write_type: owned(s.read_write_type().map(|t| t.as_str())),
                include_management_events: s.include_management_events(),
                data_resources: s
                    .data_resources()
                    .iter()
                    .map(|d| RecordedDataResource { r#type: owned(d.r#type()), values: d.values().to_vec() })
                    .collect(),
                exclude_management_event_sources: s.exclude_management_event_sources().to_vec(),
            })
            .collect(),
        advanced_event_selectors: sel
            .advanced_event_selectors()
            .iter()
            .map(|a| RecordedAdvancedSelector {
                name: owned(a.name()),
                field_selectors: a
                    .field_selectors()
                    .iter()
                    .map(|f| RecordedFieldSelector {
                        field: f.field().to_owned(),
                        equals: f.equals().to_vec(),
                        starts_with: f.starts_with().to_vec(),
                        ends_with: f.ends_with().to_vec(),
                        not_equals: f.not_equals().to_vec(),
                        not_starts_with: f.not_starts_with().to_vec(),
                        not_ends_with: f.not_ends_with().to_vec(),
                    })
                    .collect(),
            })
            .collect(),
        insight_selectors,
        tags,
    })
}

/// Creates the trail `r` (a [`read`] record) again in its home region through `home`, with every
/// setting, selector and tag it had, logging if it was.
pub async fn recreate(home: &AccountConfig, r: &RecordedTrail) -> Result<(), StepError> {
    let ct = home.cloudtrail();
    let name = r.name.as_deref().unwrap_or_default();
    let tags: Vec<Tag> = r
        .tags
        .iter()
        .filter_map(|t| Tag::builder().set_key(t.key.clone()).set_value(t.value.clone()).build().ok())
        .collect();
    crate::aws::while_role_propagates(|| {
        ct.create_trail()
            .name(name)
            .set_s3_bucket_name(r.s3_bucket_name.clone())
            .set_s3_key_prefix(r.s3_key_prefix.clone())
            // CreateTrail's SnsTopicName takes the topic's name or ARN.
            .set_sns_topic_name(r.sns_topic_arn.clone())
            .set_include_global_service_events(r.include_global_service_events)
            .set_is_multi_region_trail(r.is_multi_region_trail)
            .set_enable_log_file_validation(r.log_file_validation_enabled)
            .set_cloud_watch_logs_log_group_arn(r.cloud_watch_logs_log_group_arn.clone())
            .set_cloud_watch_logs_role_arn(r.cloud_watch_logs_role_arn.clone())
            .set_kms_key_id(r.kms_key_id.clone())
            .set_tags_list((!tags.is_empty()).then(|| tags.clone()))
            .send()
    })
    .await
    .aws(format!("cloudtrail:CreateTrail {name} (recreating the account's own trail)"))?;
    let (advanced, basic) = selectors(r)?;
    let put = ct.put_event_selectors().trail_name(name);
    let put = if advanced.is_empty() {
        put.set_event_selectors(Some(basic))
    } else {
        put.set_advanced_event_selectors(Some(advanced))
    };
    put.send().await.aws(format!("cloudtrail:PutEventSelectors {name}"))?;
    let insights = insight_selectors(r);
    if !insights.is_empty() {
        ct.put_insight_selectors()
            .trail_name(name)
            .set_insight_selectors(Some(insights))
            .send()
            .await
            .aws(format!("cloudtrail:PutInsightSelectors {name}"))?;
    }
    if r.is_logging == Some(true) {
        ct.start_logging().name(name).send().await.aws(format!("cloudtrail:StartLogging {name}"))?;
    }
    Ok(())
}

/// A list, or nothing where the record has none (CloudTrail refuses an empty one).
fn some(v: &[String]) -> Option<Vec<String>> {
    Some(v.to_vec()).filter(|v| !v.is_empty())
}

/// The record's event selectors as PutEventSelectors takes them: (advanced, basic).
fn selectors(r: &RecordedTrail) -> Result<(Vec<AdvancedEventSelector>, Vec<EventSelector>), StepError> {
    let advanced = r
        .advanced_event_selectors
        .iter()
        .map(|a| {
            let fields = a
                .field_selectors
                .iter()
                .map(|f| {
                    AdvancedFieldSelector::builder()
                        .field(&f.field)
                        .set_equals(some(&f.equals))
                        .set_starts_with(some(&f.starts_with))
                        .set_ends_with(some(&f.ends_with))
                        .set_not_equals(some(&f.not_equals))
                        .set_not_starts_with(some(&f.not_starts_with))
                        .set_not_ends_with(some(&f.not_ends_with))
                        .build()
                        .map_err(|e| StepError::internal(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            AdvancedEventSelector::builder()
                .set_name(a.name.clone())
                .set_field_selectors(Some(fields))
                .build()
                .map_err(|e| StepError::internal(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let basic = r
        .event_selectors
        .iter()
        .map(|s| {
            EventSelector::builder()
                .set_read_write_type(s.read_write_type.as_deref().map(ReadWriteType::from))
                .set_include_management_events(s.include_management_events)
                .set_data_resources(Some(
                    s.data_resources
                        .iter()
                        .map(|d| {
                            DataResource::builder()
                                .set_type(d.r#type.clone())
                                .set_values(Some(d.values.clone()))
                                .build()
                        })
                        .collect(),
                ))
                .set_exclude_management_event_sources(Some(s.exclude_management_event_sources.clone()))
                .build()
        })
        .collect();
    Ok((advanced, basic))
}

/// The record's Insights selectors as PutInsightSelectors takes them.
fn insight_selectors(r: &RecordedTrail) -> Vec<InsightSelector> {
    r.insight_selectors
        .iter()
        .map(|i| {
            InsightSelector::builder()
                .set_insight_type(i.insight_type.as_deref().map(InsightType::from))
                // Only where the trail had them: an empty list reads back as one.
                .set_event_categories(
                    Some(i.event_categories.iter().map(|c| SourceEventCategory::from(c.as_str())).collect())
                        .filter(|c: &Vec<SourceEventCategory>| !c.is_empty()),
                )
                .build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A retired trail as an earlier version recorded it (untyped JSON under these keys).
    fn recorded() -> serde_json::Value {
        json!({
            "name": "team-trail", "trailArn": "arn:aws:cloudtrail:eu-west-1:111122223333:trail/team-trail",
            "homeRegion": "eu-west-1", "s3BucketName": "team-logs", "s3KeyPrefix": null, "snsTopicArn": null,
            "includeGlobalServiceEvents": true, "isMultiRegionTrail": false, "isOrganizationTrail": false,
            "logFileValidationEnabled": true, "cloudWatchLogsLogGroupArn": null, "cloudWatchLogsRoleArn": null,
            "kmsKeyId": "arn:aws:kms:eu-west-1:111122223333:key/k", "isLogging": true,
            "eventSelectors": [{"readWriteType": "WriteOnly", "includeManagementEvents": true,
                                "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3"]}],
                                "excludeManagementEventSources": []}],
            "advancedEventSelectors": [{"name": "writes", "fieldSelectors": [{"field": "readOnly", "equals": ["false"],
                "startsWith": [], "endsWith": [], "notEquals": [], "notStartsWith": [], "notEndsWith": []}]}],
            "insightSelectors": [{"insightType": "ApiCallRateInsight", "eventCategories": []}],
            "tags": [{"key": "team", "value": "payments"}],
        })
    }

    #[test]
    fn a_record_reads_back_as_written_and_an_older_one_with_what_it_left_out_defaulted() {
        let r: RecordedTrail = serde_json::from_value(recorded()).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), recorded(), "the typed record keeps the JSON it was");
        assert_eq!((r.home_region.as_deref(), r.is_logging), (Some("eu-west-1"), Some(true)));
        let old: RecordedTrail = serde_json::from_value(json!({"trailArn": "arn", "isLogging": false})).unwrap();
        assert_eq!((old.trail_arn.as_str(), old.tags.len(), old.name), ("arn", 0, None));
        let own: OwnTrails =
            serde_json::from_value(json!({"stopped": ["arn:old", {"arn": "arn:new", "homeRegion": "eu-west-1"}],
                                                           "retired": [recorded()], "leftAlone": []}))
            .unwrap();
        assert_eq!(own.stopped[0], StoppedTrail::Arn("arn:old".into()));
        assert_eq!(own.stopped[1], StoppedTrail::At { arn: "arn:new".into(), home_region: Some("eu-west-1".into()) });
    }

    #[test]
    fn a_record_gives_the_selectors_it_had_and_leaves_out_empty_lists() {
        let r: RecordedTrail = serde_json::from_value(recorded()).unwrap();
        let (advanced, basic) = selectors(&r).unwrap();
        let fields = advanced[0].field_selectors();
        assert_eq!(
            (fields[0].field(), fields[0].equals(), fields[0].starts_with()),
            ("readOnly", &["false".to_owned()][..], &[][..])
        );
        assert_eq!(basic[0].read_write_type(), Some(&ReadWriteType::WriteOnly));
        let insights = insight_selectors(&r);
        assert_eq!(insights[0].insight_type(), Some(&InsightType::ApiCallRateInsight));
        assert!(insights[0].event_categories().is_empty(), "no categories where the trail had none");
    }
}

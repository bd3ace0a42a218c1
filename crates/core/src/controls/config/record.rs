//! A Config recorder and delivery channel recorded whole, as DescribeConfigurationRecorders and
//! DescribeDeliveryChannels answer, and written back from that record: every field PutConfigurationRecorder
//! and PutDeliveryChannel take (https://docs.aws.amazon.com/config/latest/APIReference/API_ConfigurationRecorder.html,
//! https://docs.aws.amazon.com/config/latest/APIReference/API_DeliveryChannel.html).

use aws_sdk_config::types::{
    ConfigSnapshotDeliveryProperties, ConfigurationRecorder, DeliveryChannel, ExclusionByResourceTypes,
    MaximumExecutionFrequency, RecordingFrequency, RecordingGroup, RecordingMode, RecordingModeOverride,
    RecordingStrategy, RecordingStrategyType, ResourceType,
};
use serde_json::{json, Value};

use assure_contract::StepError;

fn types(v: &Value) -> Vec<ResourceType> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).map(ResourceType::from).collect()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// Whether `r` is a service-linked recorder (a service such as Security Hub owns it; it is not the
/// region's one customer managed recorder and assure leaves it alone).
pub fn service_linked(r: &Value) -> bool {
    r["servicePrincipal"].is_string()
}

pub fn recorder(r: &ConfigurationRecorder) -> Value {
    let g = r.recording_group();
    json!({
        "arn": r.arn(),
        "name": r.name(),
        "roleARN": r.role_arn(),
        "recordingGroup": g.map(|g| json!({
            "allSupported": g.all_supported(),
            "includeGlobalResourceTypes": g.include_global_resource_types(),
            "resourceTypes": g.resource_types().iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            "exclusionByResourceTypes": g.exclusion_by_resource_types().map(|e| json!({
                "resourceTypes": e.resource_types().iter().map(|t| t.as_str()).collect::<Vec<_>>()})),
            "recordingStrategy": g.recording_strategy().map(|s| json!({"useOnly": s.use_only().map(|u| u.as_str())})),
        })),
        "recordingMode": r.recording_mode().map(|m| json!({
            "recordingFrequency": m.recording_frequency().as_str(),
            "recordingModeOverrides": m.recording_mode_overrides().iter().map(|o| json!({
                "description": o.description(),
                "resourceTypes": o.resource_types().iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                "recordingFrequency": o.recording_frequency().as_str(),
            })).collect::<Vec<_>>(),
        })),
        "recordingScope": r.recording_scope().map(|s| s.as_str()),
        "servicePrincipal": r.service_principal(),
    })
}

/// The recorder a [`recorder`] record describes, as PutConfigurationRecorder takes it.
pub fn recorder_from(r: &Value) -> Result<ConfigurationRecorder, StepError> {
    let g = &r["recordingGroup"];
    let group = (!g.is_null()).then(|| {
        let exclusion = &g["exclusionByResourceTypes"];
        RecordingGroup::builder()
            .set_all_supported(g["allSupported"].as_bool())
            .set_include_global_resource_types(g["includeGlobalResourceTypes"].as_bool())
            .set_resource_types(Some(types(&g["resourceTypes"])).filter(|t| !t.is_empty()))
            .set_exclusion_by_resource_types((!exclusion.is_null()).then(|| {
                ExclusionByResourceTypes::builder().set_resource_types(Some(types(&exclusion["resourceTypes"]))).build()
            }))
            .set_recording_strategy(
                g["recordingStrategy"]["useOnly"]
                    .as_str()
                    .map(|u| RecordingStrategy::builder().use_only(RecordingStrategyType::from(u)).build()),
            )
            .build()
    });
    let m = &r["recordingMode"];
    let mode = match m["recordingFrequency"].as_str() {
        Some(f) => Some(
            RecordingMode::builder()
                .recording_frequency(RecordingFrequency::from(f))
                .set_recording_mode_overrides(Some(
                    m["recordingModeOverrides"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|o| {
                            RecordingModeOverride::builder()
                                .set_description(text(&o["description"]))
                                .set_resource_types(Some(types(&o["resourceTypes"])))
                                .recording_frequency(RecordingFrequency::from(
                                    o["recordingFrequency"].as_str().unwrap_or("CONTINUOUS"),
                                ))
                                .build()
                                .map_err(|e| StepError::internal(e.to_string()))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ))
                .build()
                .map_err(|e| StepError::internal(e.to_string()))?,
        ),
        None => None,
    };
    Ok(ConfigurationRecorder::builder()
        .set_name(text(&r["name"]))
        .set_role_arn(text(&r["roleARN"]))
        .set_recording_group(group)
        .set_recording_mode(mode)
        .build())
}

pub fn channel(d: &DeliveryChannel) -> Value {
    json!({
        "name": d.name(),
        "s3BucketName": d.s3_bucket_name(),
        "s3KeyPrefix": d.s3_key_prefix(),
        "s3KmsKeyArn": d.s3_kms_key_arn(),
        "snsTopicARN": d.sns_topic_arn(),
        "configSnapshotDeliveryProperties": d.config_snapshot_delivery_properties().map(|p| json!({
            "deliveryFrequency": p.delivery_frequency().map(|f| f.as_str())})),
    })
}

/// The delivery channel a [`channel`] record describes, as PutDeliveryChannel takes it.
pub fn channel_from(c: &Value) -> DeliveryChannel {
    let props = &c["configSnapshotDeliveryProperties"];
    DeliveryChannel::builder()
        .set_name(text(&c["name"]))
        .set_s3_bucket_name(text(&c["s3BucketName"]))
        .set_s3_key_prefix(text(&c["s3KeyPrefix"]))
        .set_s3_kms_key_arn(text(&c["s3KmsKeyArn"]))
        .set_sns_topic_arn(text(&c["snsTopicARN"]))
        .set_config_snapshot_delivery_properties((!props.is_null()).then(|| {
            ConfigSnapshotDeliveryProperties::builder()
                .set_delivery_frequency(props["deliveryFrequency"].as_str().map(MaximumExecutionFrequency::from))
                .build()
        }))
        .build()
}

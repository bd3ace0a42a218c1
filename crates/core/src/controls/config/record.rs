//! A Config recorder and delivery channel recorded whole, as DescribeConfigurationRecorders and
//! DescribeDeliveryChannels answer, and written back from that record: every field PutConfigurationRecorder
//! and PutDeliveryChannel take (https://docs.aws.amazon.com/config/latest/APIReference/API_ConfigurationRecorder.html,
//! https://docs.aws.amazon.com/config/latest/APIReference/API_DeliveryChannel.html).

use aws_sdk_config::types::{
    ConfigSnapshotDeliveryProperties, ConfigurationRecorder, DeliveryChannel, ExclusionByResourceTypes,
    MaximumExecutionFrequency, RecordingFrequency, RecordingGroup, RecordingMode, RecordingModeOverride,
    RecordingStrategy, RecordingStrategyType, ResourceType,
};
use serde::{Deserialize, Serialize};

use assure_contract::StepError;

/// A recorder as DescribeConfigurationRecorders answers it, in Config's own words (camelCase, as
/// the API's JSON names them). Every field defaults, so a record an earlier version wrote reads
/// back whatever it left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedRecorder {
    pub arn: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "roleARN")]
    pub role_arn: Option<String>,
    pub recording_group: Option<RecordedGroup>,
    pub recording_mode: Option<RecordedMode>,
    pub recording_scope: Option<String>,
    /// The service that owns a service-linked recorder (Security Hub, say).
    pub service_principal: Option<String>,
    /// Whether it records (DescribeConfigurationRecorderStatus): in a snapshot's recorders only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedGroup {
    pub all_supported: Option<bool>,
    pub include_global_resource_types: Option<bool>,
    pub resource_types: Vec<String>,
    pub exclusion_by_resource_types: Option<RecordedTypes>,
    pub recording_strategy: Option<RecordedStrategy>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedTypes {
    pub resource_types: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedStrategy {
    pub use_only: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedMode {
    pub recording_frequency: Option<String>,
    pub recording_mode_overrides: Vec<RecordedOverride>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedOverride {
    pub description: Option<String>,
    pub resource_types: Vec<String>,
    pub recording_frequency: Option<String>,
}

/// A delivery channel as DescribeDeliveryChannels answers it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedChannel {
    pub name: Option<String>,
    pub s3_bucket_name: Option<String>,
    pub s3_key_prefix: Option<String>,
    pub s3_kms_key_arn: Option<String>,
    #[serde(rename = "snsTopicARN")]
    pub sns_topic_arn: Option<String>,
    pub config_snapshot_delivery_properties: Option<RecordedDelivery>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedDelivery {
    pub delivery_frequency: Option<String>,
}

/// A region's part of the control's snapshot: every recorder (service-linked ones too), with
/// whether it records, and every delivery channel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConfigPart {
    pub recorders: Vec<RecordedRecorder>,
    pub delivery_channels: Vec<RecordedChannel>,
}

impl ConfigPart {
    /// The part as a snapshot holds it (null for a region not read: an empty part).
    pub fn of(part: &serde_json::Value) -> Result<ConfigPart, StepError> {
        Ok(crate::controls::recorded(part, "Config's snapshot part")?.unwrap_or_default())
    }
}

fn types(v: &[String]) -> Vec<ResourceType> {
    v.iter().map(|t| ResourceType::from(t.as_str())).collect()
}

fn owned(v: Option<&str>) -> Option<String> {
    v.map(str::to_owned)
}

fn names(v: &[ResourceType]) -> Vec<String> {
    v.iter().map(|t| t.as_str().to_owned()).collect()
}

impl RecordedRecorder {
    /// Whether it is a service-linked recorder (a service such as Security Hub owns it; it is not
    /// the region's one customer managed recorder and assure leaves it alone).
    pub fn service_linked(&self) -> bool {
        self.service_principal.is_some()
    }

    /// Whether it records all supported resource types.
    pub fn all_supported(&self) -> Option<bool> {
        self.recording_group.as_ref().and_then(|g| g.all_supported)
    }
}

pub fn recorder(r: &ConfigurationRecorder) -> RecordedRecorder {
    RecordedRecorder {
        arn: owned(r.arn()),
        name: owned(r.name()),
        role_arn: owned(r.role_arn()),
        recording_group: r.recording_group().map(|g| RecordedGroup {
            all_supported: Some(g.all_supported()),
            include_global_resource_types: Some(g.include_global_resource_types()),
            resource_types: names(g.resource_types()),
            exclusion_by_resource_types: g
                .exclusion_by_resource_types()
                .map(|e| RecordedTypes { resource_types: names(e.resource_types()) }),
            recording_strategy: g
                .recording_strategy()
                .map(|s| RecordedStrategy { use_only: owned(s.use_only().map(|u| u.as_str())) }),
        }),
        recording_mode: r.recording_mode().map(|m| RecordedMode {
            recording_frequency: Some(m.recording_frequency().as_str().to_owned()),
            recording_mode_overrides: m
                .recording_mode_overrides()
                .iter()
                .map(|o| RecordedOverride {
                    description: owned(o.description()),
                    resource_types: names(o.resource_types()),
                    recording_frequency: Some(o.recording_frequency().as_str().to_owned()),
                })
                .collect(),
        }),
        recording_scope: owned(r.recording_scope().map(|s| s.as_str())),
        service_principal: owned(r.service_principal()),
        recording: None,
    }
}

/// The recorder a [`recorder`] record describes, as PutConfigurationRecorder takes it.
pub fn recorder_from(r: &RecordedRecorder) -> Result<ConfigurationRecorder, StepError> {
    let group = r.recording_group.as_ref().map(|g| {
        RecordingGroup::builder()
            .set_all_supported(g.all_supported)
            .set_include_global_resource_types(g.include_global_resource_types)
            .set_resource_types(Some(types(&g.resource_types)).filter(|t| !t.is_empty()))
            .set_exclusion_by_resource_types(g.exclusion_by_resource_types.as_ref().map(|e| {
                ExclusionByResourceTypes::builder().set_resource_types(Some(types(&e.resource_types))).build()
            }))
            .set_recording_strategy(
                g.recording_strategy
                    .as_ref()
                    .and_then(|s| s.use_only.as_deref())
                    .map(|u| RecordingStrategy::builder().use_only(RecordingStrategyType::from(u)).build()),
            )
            .build()
    });
    let mode = match r.recording_mode.as_ref().and_then(|m| m.recording_frequency.as_deref().map(|f| (m, f))) {
        Some((m, f)) => Some(
            RecordingMode::builder()
                .recording_frequency(RecordingFrequency::from(f))
                .set_recording_mode_overrides(Some(
                    m.recording_mode_overrides
                        .iter()
                        .map(|o| {
                            RecordingModeOverride::builder()
                                .set_description(o.description.clone())
                                .set_resource_types(Some(types(&o.resource_types)))
                                .recording_frequency(RecordingFrequency::from(
                                    o.recording_frequency.as_deref().unwrap_or("CONTINUOUS"),
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
        .set_name(r.name.clone())
        .set_role_arn(r.role_arn.clone())
        .set_recording_group(group)
        .set_recording_mode(mode)
        .build())
}

pub fn channel(d: &DeliveryChannel) -> RecordedChannel {
    RecordedChannel {
        name: owned(d.name()),
        s3_bucket_name: owned(d.s3_bucket_name()),
        s3_key_prefix: owned(d.s3_key_prefix()),
        s3_kms_key_arn: owned(d.s3_kms_key_arn()),
        sns_topic_arn: owned(d.sns_topic_arn()),
        config_snapshot_delivery_properties: d
            .config_snapshot_delivery_properties()
            .map(|p| RecordedDelivery { delivery_frequency: owned(p.delivery_frequency().map(|f| f.as_str())) }),
    }
}

/// The delivery channel a [`channel`] record describes, as PutDeliveryChannel takes it.
pub fn channel_from(c: &RecordedChannel) -> DeliveryChannel {
    DeliveryChannel::builder()
        .set_name(c.name.clone())
        .set_s3_bucket_name(c.s3_bucket_name.clone())
        .set_s3_key_prefix(c.s3_key_prefix.clone())
        .set_s3_kms_key_arn(c.s3_kms_key_arn.clone())
        .set_sns_topic_arn(c.sns_topic_arn.clone())
        .set_config_snapshot_delivery_properties(c.config_snapshot_delivery_properties.as_ref().map(|p| {
            ConfigSnapshotDeliveryProperties::builder()
                .set_delivery_frequency(p.delivery_frequency.as_deref().map(MaximumExecutionFrequency::from))
                .build()
        }))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A region's part as an earlier version recorded it (untyped JSON under these keys).
    fn part() -> serde_json::Value {
        json!({
            "recorders": [{
                "arn": "arn:aws:config:eu-west-1:111122223333:config-recorder/team", "name": "team",
                "roleARN": "arn:aws:iam::111122223333:role/team-config",
                "recordingGroup": {"allSupported": false, "includeGlobalResourceTypes": false,
                                   "resourceTypes": ["AWS::S3::Bucket"], "exclusionByResourceTypes": null,
                                   "recordingStrategy": {"useOnly": "INCLUSION_BY_RESOURCE_TYPES"}},
                "recordingMode": {"recordingFrequency": "DAILY", "recordingModeOverrides": [
                    {"description": "buckets now", "resourceTypes": ["AWS::S3::Bucket"], "recordingFrequency": "CONTINUOUS"}]},
                "recordingScope": null, "servicePrincipal": null, "recording": false,
            }, {
                "arn": "arn:linked", "name": "linked", "roleARN": null, "recordingGroup": null, "recordingMode": null,
                "recordingScope": "PAID", "servicePrincipal": "securityhub.amazonaws.com", "recording": true,
            }],
            "deliveryChannels": [{"name": "team", "s3BucketName": "team-config", "s3KeyPrefix": "p", "s3KmsKeyArn": null,
                                  "snsTopicARN": null, "configSnapshotDeliveryProperties": {"deliveryFrequency": "Six_Hours"}}],
        })
    }

    #[test]
    fn a_part_reads_back_as_written_and_knows_its_service_linked_recorders() {
        let typed = ConfigPart::of(&part()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), part(), "the typed part keeps the JSON it was");
        assert_eq!(typed.recorders.iter().map(RecordedRecorder::service_linked).collect::<Vec<_>>(), [false, true]);
        assert_eq!(ConfigPart::of(&serde_json::Value::Null).unwrap(), ConfigPart::default());
        assert!(ConfigPart::of(&json!({"recorders": "no"})).is_err(), "a part that is not one is an error, not empty");
    }

    #[test]
    fn a_record_is_written_back_with_every_field_put_takes() {
        let typed = ConfigPart::of(&part()).unwrap();
        let r = recorder_from(&typed.recorders[0]).unwrap();
        let g = r.recording_group().unwrap();
        assert_eq!((g.all_supported(), g.resource_types()), (false, &[ResourceType::from("AWS::S3::Bucket")][..]));
        assert!(g.exclusion_by_resource_types().is_none());
        let m = r.recording_mode().unwrap();
        assert_eq!((m.recording_frequency(), m.recording_mode_overrides().len()), (&RecordingFrequency::Daily, 1));
        let c = channel_from(&typed.delivery_channels[0]);
        assert_eq!((c.s3_key_prefix(), c.s3_kms_key_arn()), (Some("p"), None));
        assert_eq!(
            c.config_snapshot_delivery_properties().and_then(|p| p.delivery_frequency()),
            Some(&MaximumExecutionFrequency::SixHours)
        );
    }
}

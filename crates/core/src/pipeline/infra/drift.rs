//! The drift notification path of the pipeline's template: the rule that matches the watch's drift
//! events, the encrypted topic it publishes their summaries to, the topic's policy and the
//! configured endpoint's subscription (decision 0069).

use serde_json::{json, Map, Value};

use crate::pipeline::resources::{DRIFT_RULE, DRIFT_TOPIC};

use super::*;

/// The drift rule's ARN, as the topic's policy names it (a rule's ARN is known before the rule is
/// made, so the policy does not wait for it).
fn drift_rule_arn() -> Value {
    sub(&format!("arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{DRIFT_RULE}"))
}

/// The drift topic's ARN, as the pipeline key's policy names it (the topic is encrypted with the
/// key, so the key cannot wait for the topic).
pub(super) fn drift_topic_arn() -> Value {
    sub(&format!("arn:${{AWS::Partition}}:sns:${{AWS::Region}}:${{AWS::AccountId}}:{DRIFT_TOPIC}"))
}

/// Drift told to people: a rule on the default bus matches the watch's drift events and publishes
/// each one's summary to the encrypted topic `assure-drift`, as its policy admits for that rule
/// only and the pipeline key's for that topic only; the configured endpoint (`DriftEndpoint`) is
/// subscribed to it. The topic is there without an endpoint too, for a subscriber of the team's own.
pub(super) fn drift_notifications(resources: &mut Map<String, Value>) {
    resources.insert(
        "DriftTopic".into(),
        json!({
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": DRIFT_TOPIC, "DisplayName": "assure drift", "KmsMasterKeyId": reference("PipelineKey")}
        }),
    );
    resources.insert(
        "DriftTopicPolicy".into(),
        json!({
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [reference("DriftTopic")],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Sid": "EventsPublishDrift", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                     "Action": "sns:Publish", "Resource": reference("DriftTopic"),
                     "Condition": {"ArnEquals": {"aws:SourceArn": drift_rule_arn()}}},
                    {"Sid": "OnlyOverTls", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
                     "Resource": reference("DriftTopic"), "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                ]}
            }
        }),
    );
    resources.insert(
        "DriftSubscription".into(),
        json!({
            "Type": "AWS::SNS::Subscription",
            "Condition": "DriftNotify",
            "Properties": {"TopicArn": reference("DriftTopic"), "Protocol": reference("DriftProtocol"), "Endpoint": reference("DriftEndpoint")}
        }),
    );
    resources.insert(
        "DriftNotifications".into(),
        json!({
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Name": DRIFT_RULE,
                "Description": "assure: tell the drift the fleet's watch finds to the drift topic's subscribers",
                "EventPattern": {"source": [crate::pipeline::fleet::SOURCE], "detail-type": [crate::pipeline::fleet::DRIFT]},
                "State": "ENABLED",
                // SNS is invoked by its topic policy, not as a role: a role fails deliveries to
                // encrypted topics (eb-use-resource-based.html, "Important").
                "Targets": [{
                    "Id": "topic",
                    "Arn": reference("DriftTopic"),
                    // Text, not a lone placeholder (which EventBridge may send as a quoted JSON
                    // string), ending with the event's id to find it by.
                    "InputTransformer": {"InputPathsMap": {"summary": "$.detail.summary", "id": "$.id"},
                                         "InputTemplate": "<summary> (event <id>)"}
                }]
            }
        }),
    );
}

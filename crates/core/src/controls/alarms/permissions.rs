//! What the alarms control's calls need granted.

use serde_json::{json, Value};

use crate::controls::kit::permissions::*;
use crate::controls::names::{ALARM_KEY_ALIAS, ALARM_PREFIX, ALARM_TOPIC, TRAIL_LOG_GROUP};
use crate::controls::Permissions;

pub(super) const PERMISSIONS: Permissions = Permissions::member(member);

/// In the onboarded account: the metric filters on the trail's log group, the alarms, their topic
/// and its key; rollback removes them.
fn member() -> Vec<Value> {
    let alarms = || own("cloudwatch", &format!("alarm:{ALARM_PREFIX}*"));
    let topic = || own("sns", ALARM_TOPIC);
    let log_group = || own("logs", &format!("log-group:{TRAIL_LOG_GROUP}*"));
    let mut statements = vec![
        read_setup(&["cloudwatch:DescribeAlarms", "logs:DescribeLogGroups"]),
        allow(
            "ReadAlarmSetup",
            json!([own("logs", "log-group:*"), own("sns", "*")]),
            &["logs:DescribeMetricFilters", "sns:GetTopicAttributes"],
        ),
        allow(
            "RemoveAlarms",
            json!([alarms(), topic(), log_group()]),
            &["cloudwatch:DeleteAlarms", "sns:DeleteTopic", "logs:DeleteMetricFilter"],
        ),
        allow(
            "TrailLogGroup",
            log_group(),
            &["logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:PutMetricFilter"],
        ),
        allow("Alarms", alarms(), &["cloudwatch:PutMetricAlarm"]),
        allow(
            "AlarmTopic",
            topic(),
            &["sns:CreateTopic", "sns:SetTopicAttributes", "sns:Subscribe", "sns:ListSubscriptionsByTopic"],
        ),
        key_alias("AlarmKeyAlias", ALARM_KEY_ALIAS, &["kms:CreateAlias"]),
        // Rollback removes the topic's key alias (the key's deletion its key policy grants).
        key_alias("RemoveAlarmKeyAlias", ALARM_KEY_ALIAS, &["kms:DeleteAlias"]),
    ];
    statements.extend(keys());
    statements
}

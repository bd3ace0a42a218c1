//! What the CloudTrail control's calls need granted.

use serde_json::{json, Value};

use crate::controls::kit::permissions::*;
use crate::controls::names::{TRAIL, TRAIL_LOG_GROUP};
use crate::controls::Permissions;

pub(super) const PERMISSIONS: Permissions = Permissions::member(member);

/// In the onboarded account: the assure trail, its log group and role; the account's own trails,
/// retired (recorded whole, then deleted) or stopped, and recreated or restarted by rollback.
fn member() -> Vec<Value> {
    let mut statements = vec![
        read_setup(&[
            "cloudtrail:DescribeTrails",
            "cloudtrail:ListTrails",
            "cloudtrail:ListTags",
            "logs:DescribeLogGroups",
        ]),
        // Trails by their name, wherever they are homed: an organization trail is another account's.
        allow(
            "ReadNamedResources",
            sub("arn:${AWS::Partition}:cloudtrail:*:*:trail/*"),
            &[
                "cloudtrail:GetTrailStatus",
                "cloudtrail:GetEventSelectors",
                "cloudtrail:GetInsightSelectors",
                "cloudtrail:GetTrail",
            ],
        ),
        allow("AssureTrail", own("cloudtrail", &format!("trail/{TRAIL}")), &["cloudtrail:UpdateTrail"]),
        allow(
            "OwnTrails",
            own("cloudtrail", "trail/*"),
            &[
                "cloudtrail:StopLogging",
                "cloudtrail:StartLogging",
                "cloudtrail:DeleteTrail",
                "cloudtrail:CreateTrail",
                "cloudtrail:PutEventSelectors",
                "cloudtrail:PutInsightSelectors",
                "cloudtrail:AddTags",
            ],
        ),
        allow(
            "TrailLogGroup",
            own("logs", &format!("log-group:{TRAIL_LOG_GROUP}*")),
            &["logs:CreateLogGroup", "logs:PutRetentionPolicy"],
        ),
        // Rollback recreates the account's own trails with the roles they had (a trail's
        // CloudWatch Logs role).
        allow_if(
            "RestoreOwnTrails",
            own_roles("*"),
            &["iam:PassRole"],
            json!({"StringEquals": {"iam:PassedToService": "cloudtrail.amazonaws.com"}}),
        ),
    ];
    statements.extend(assure_roles());
    statements
}

//! What the AWS Config control's calls need granted.

use assure_contract::StepName;
use serde_json::{json, Value};

use crate::controls::kit::permissions::*;
use crate::controls::Permissions;

pub(super) const PERMISSIONS: Permissions = Permissions { member, pipeline: |_| Vec::new(), management };

/// In the onboarded account: the recorder and its delivery channel, taken over and restored; in
/// the security account, the organization's aggregator and its role.
fn member() -> Vec<Value> {
    let mut statements = vec![
        read_setup(&[
            "config:DescribeConfigurationRecorders",
            "config:DescribeConfigurationRecorderStatus",
            "config:DescribeDeliveryChannels",
            "config:DescribeDeliveryChannelStatus",
            "config:DescribeConfigurationAggregators",
        ]),
        service_linked_role("ConfigServiceLinkedRole", "config.amazonaws.com"),
        // Rollback restores the account's own recorder with the role it had.
        allow_if(
            "RestoreOwnRecorder",
            own_roles("*"),
            &["iam:PassRole"],
            json!({"StringEquals": {"iam:PassedToService": "config.amazonaws.com"}}),
        ),
        // The recorder records as Config's service-linked role.
        allow("PassServiceLinkedRoles", own_roles("aws-service-role/*"), &["iam:PassRole"]),
        allow(
            "Config",
            any(),
            &[
                "config:PutConfigurationRecorder",
                "config:PutDeliveryChannel",
                "config:StartConfigurationRecorder",
                "config:PutConfigurationAggregator",
                "config:StopConfigurationRecorder",
                "config:DeleteDeliveryChannel",
                "config:DeleteConfigurationRecorder",
            ],
        ),
        // Config checks an organization aggregator's delegated administrator with the caller's own
        // permission to list them (API_PutConfigurationAggregator, OrganizationAccessDeniedException).
        allow("ConfigOrganizationAggregator", any(), &["organizations:ListDelegatedAdministrators"]),
    ];
    statements.extend(assure_roles());
    statements
}

/// The step (or a bulk run's organization step): trusted access and the security account as the
/// delegated administrator of the organization's aggregator.
fn management(step: StepName) -> Vec<Grant> {
    match step {
        StepName::Config | StepName::Organization => vec![(any(), DELEGATED_ADMINISTRATOR.to_vec())],
        _ => vec![],
    }
}

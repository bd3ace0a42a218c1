//! What the GuardDuty control's calls need granted.

use assure_contract::StepName;
use serde_json::Value;

use crate::controls::kit::permissions::*;
use crate::controls::Permissions;

pub(super) const PERMISSIONS: Permissions = Permissions { member, pipeline: |_| Vec::new(), management };

/// Making the security account GuardDuty's delegated administrator (the GuardDuty step in a run of
/// its own, the organization step in a bulk run): the call, and the Organizations actions GuardDuty
/// makes with the caller's permissions while it serves it. GuardDuty's guide grants them on "*"
/// (https://docs.aws.amazon.com/guardduty/latest/ug/organizations_permissions.html).
const ADMINISTRATOR: &[&str] = &[
    "guardduty:EnableOrganizationAdminAccount",
    "guardduty:ListOrganizationAdminAccounts",
    "organizations:DescribeOrganization",
    "organizations:DescribeAccount",
    "organizations:DescribeOrganizationalUnit",
    "organizations:ListAccounts",
    "organizations:EnableAWSServiceAccess",
    "organizations:ListAWSServiceAccessForOrganization",
    "organizations:RegisterDelegatedAdministrator",
    "organizations:ListDelegatedAdministrators",
];

/// In every account: its detector, taken from a foreign administrator and made a member of the
/// security account's; in the security account, the organization's configuration, the members,
/// the findings' export.
fn member() -> Vec<Value> {
    vec![
        // GetAdministratorAccount, GetMembers and ListMembers are authorized against whatever
        // detector the account holds.
        read_setup(&[
            "guardduty:ListDetectors",
            "guardduty:GetAdministratorAccount",
            "guardduty:GetMembers",
            "guardduty:ListMembers",
            "guardduty:ListFilters",
            "guardduty:ListPublishingDestinations",
            "guardduty:DescribeOrganizationConfiguration",
        ]),
        allow("ReadDetectors", own("guardduty", "detector/*"), &["guardduty:GetDetector", "guardduty:GetFilter"]),
        service_linked_role("GuardDutyServiceLinkedRole", "guardduty.amazonaws.com"),
        allow(
            "GuardDuty",
            any(),
            &[
                "guardduty:CreateDetector",
                "guardduty:CreateMembers",
                "guardduty:DisassociateFromAdministratorAccount",
                "guardduty:DisassociateMembers",
                "guardduty:UpdateOrganizationConfiguration",
                "guardduty:CreatePublishingDestination",
                "guardduty:DeleteMembers",
            ],
        ),
        allow(
            "GuardDutyDetector",
            own("guardduty", "detector/*"),
            &["guardduty:UpdateDetector", "guardduty:UpdateFilter"],
        ),
    ]
}

/// Preflight: another delegated administrator. The step (or a bulk run's organization step): the
/// security account as GuardDuty's delegated administrator.
fn management(step: StepName) -> Vec<Grant> {
    match step {
        StepName::Preflight => {
            vec![(any(), vec!["guardduty:ListOrganizationAdminAccounts", "organizations:ListDelegatedAdministrators"])]
        }
        StepName::GuardDuty | StepName::Organization => vec![(any(), ADMINISTRATOR.to_vec())],
        _ => vec![],
    }
}

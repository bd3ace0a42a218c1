//! What the SCP control's calls need granted. The pipeline account manages the organization's SCPs
//! itself, by the delegation policy of the management account's bootstrap stack; the management
//! account's role does only centralized root access.

use assure_contract::StepName;
use serde_json::{json, Value};

use crate::controls::kit::permissions::*;
use crate::controls::Permissions;

use super::root;

pub(super) const PERMISSIONS: Permissions = Permissions { member, pipeline, management };

/// Centralized root access for the organization (`options.root_access = "centralized"`): trusted
/// access for IAM, then its two features. IAM authorizes the features' actions against no resource
/// type (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html).
const ROOT_ACCESS_ORGANIZATION: &[&str] = &[
    "organizations:EnableAWSServiceAccess",
    "organizations:ListAWSServiceAccessForOrganization",
    "iam:ListOrganizationsFeatures",
    "iam:EnableOrganizationsRootCredentialsManagement",
    "iam:EnableOrganizationsRootSessions",
];

/// Verify: the root user's credentials left in the account (centralized root access).
fn member() -> Vec<Value> {
    vec![read_setup(&["iam:GetAccountSummary"])]
}

/// assure's policies, read and changed only those it made, by name; their attachments.
fn pipeline(step: StepName) -> Vec<Grant> {
    let attach = || json!([scps()[0].clone(), targets()[0].clone(), targets()[1].clone(), targets()[2].clone()]);
    match step {
        // SCPs enabled in the root, none of assure's detached where the account is.
        StepName::Preflight => {
            vec![(any(), vec!["organizations:ListRoots"]), (targets(), vec!["organizations:ListPoliciesForTarget"])]
        }
        StepName::Scps => vec![
            (any(), vec!["organizations:ListPolicies", "organizations:CreatePolicy"]),
            (scps(), vec!["organizations:DescribePolicy", "organizations:UpdatePolicy"]),
            (targets(), vec!["organizations:ListPoliciesForTarget"]),
            (attach(), vec!["organizations:AttachPolicy"]),
        ],
        // The policies themselves and their attachment to the logging and security accounts (the
        // accounts' own attachments are their runs'), and the organization's checks (its root
        // enables SCPs).
        StepName::Organization => vec![
            (any(), vec!["organizations:ListRoots", "organizations:ListPolicies", "organizations:CreatePolicy"]),
            (scps(), vec!["organizations:DescribePolicy", "organizations:UpdatePolicy"]),
            (accounts(), vec!["organizations:ListPoliciesForTarget"]),
            (json!([scps()[0].clone(), accounts()]), vec!["organizations:AttachPolicy"]),
        ],
        StepName::Verify => vec![
            (targets(), vec!["organizations:ListPoliciesForTarget"]),
            (scps(), vec!["organizations:DescribePolicy"]),
        ],
        StepName::Rollback => vec![
            (targets(), vec!["organizations:ListPoliciesForTarget"]),
            (attach(), vec!["organizations:DetachPolicy"]),
        ],
        _ => vec![],
    }
}

/// Centralized root access: the organization's features, and a root session scoped to one task
/// (the step deletes the root user's credentials; rollback lets the account make a password again).
fn management(step: StepName) -> Vec<Grant> {
    match step {
        StepName::Scps => vec![(any(), ROOT_ACCESS_ORGANIZATION.to_vec()), root_session(&[root::DELETE_TASK])],
        StepName::Organization => vec![(any(), ROOT_ACCESS_ORGANIZATION.to_vec())],
        StepName::Verify => vec![(any(), vec!["iam:ListOrganizationsFeatures"])],
        StepName::Rollback => vec![root_session(&[root::PASSWORD_TASK])],
        _ => vec![],
    }
}

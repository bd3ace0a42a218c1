//! How a control writes down what its calls need granted ([`crate::controls::Permissions`]): IAM
//! policy statements in CloudFormation's terms (`Fn::Sub` with the template's parameters), which
//! `pipeline::infra` joins into the templates' roles.

use serde_json::{json, Value};

/// What a role may do: `(resource, actions)`. The resource is a JSON resource (a string or a list,
/// either of which may be an `Fn::Sub`), or `{"Resource": …, "Condition": …}` for a grant with a
/// condition.
pub type Grant = (Value, Vec<&'static str>);

/// `Fn::Sub` of `s`.
pub fn sub(s: &str) -> Value {
    json!({"Fn::Sub": s})
}

/// Every resource: for the actions that take no resource-level permission.
pub fn any() -> Value {
    json!("*")
}

/// The onboarded account's own resource of `service` matching `pattern`, in any region
/// (`arn:…:{service}:*:{account}:{pattern}`), for the member role.
pub fn own(service: &str, pattern: &str) -> Value {
    sub(&format!("arn:${{AWS::Partition}}:{service}:*:${{AWS::AccountId}}:{pattern}"))
}

/// The onboarded account's IAM roles matching `pattern` (`role/{pattern}`), for the member role.
pub fn own_roles(pattern: &str) -> Value {
    sub(&format!("arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{pattern}"))
}

/// An allow statement of the member role.
pub fn allow(sid: &str, resource: Value, actions: &[&str]) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Resource": resource, "Action": actions})
}

/// An allow statement of the member role, with a condition.
pub fn allow_if(sid: &str, resource: Value, actions: &[&str], condition: Value) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Resource": resource, "Action": actions, "Condition": condition})
}

/// Resources of the organization, which live under the management account
/// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html):
/// `pattern` under `arn:…:organizations::{ManagementAccount}:`.
pub fn organization(pattern: &str) -> Value {
    sub(&format!("arn:${{AWS::Partition}}:organizations::${{ManagementAccount}}:{pattern}"))
}

/// The organization's member accounts.
pub fn accounts() -> Value {
    organization("account/o-*/*")
}

/// What an SCP attaches to: accounts, organizational units, the root.
pub fn targets() -> Value {
    json!([organization("account/o-*/*"), organization("ou/o-*/ou-*"), organization("root/o-*/r-*")])
}

/// The organization's service control policies.
pub fn scps() -> Value {
    json!([organization("policy/o-*/service_control_policy/p-*")])
}

/// A root session in a member account, scoped to `tasks` only: sts:AssumeRoot on the root-user
/// resource type with sts:TaskPolicyArn
/// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html).
pub fn root_session(tasks: &[&str]) -> Grant {
    (
        json!({"Resource": sub("arn:${AWS::Partition}:iam::*:root"), "Condition": {"StringEquals": {"sts:TaskPolicyArn": tasks}}}),
        vec!["sts:AssumeRoot"],
    )
}

/// What `kit::service_role` does to the roles assure names `assure-*`, for a control that
/// hands roles to services: makes them, writes their trust and inline policy, takes over one of
/// its name made before assure (put back as it was by rollback), removes it; and reads any role.
pub fn assure_roles() -> Vec<Value> {
    vec![
        allow(
            "AssureRoles",
            own_roles("assure-*"),
            &[
                "iam:CreateRole",
                "iam:PutRolePolicy",
                "iam:UpdateAssumeRolePolicy",
                "iam:PassRole",
                "iam:DeleteRolePolicy",
                "iam:DeleteRole",
                "iam:DeleteRolePermissionsBoundary",
                "iam:DetachRolePolicy",
                "iam:PutRolePermissionsBoundary",
                "iam:AttachRolePolicy",
            ],
        ),
        allow(
            "ReadRoles",
            own_roles("*"),
            &["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"],
        ),
    ]
}

/// What `kit::ensure_service_linked_role` does for `service`: makes its service-linked role.
pub fn service_linked_role(sid: &str, service: &str) -> Value {
    allow_if(
        sid,
        own_roles("aws-service-role/*"),
        &["iam:CreateServiceLinkedRole"],
        json!({"StringEquals": {"iam:AWSServiceName": service}}),
    )
}

/// What `kit::ensure_key` and `kit::read_key` read of a customer managed key.
pub fn read_keys() -> Value {
    allow("ReadKeys", own("kms", "key/*"), &["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus"])
}

/// What `kit::ensure_key` does to make a customer managed key: create it, tagged as assure's
/// (tags given to CreateKey need kms:TagResource on every key of the account and Region,
/// https://docs.aws.amazon.com/kms/latest/developerguide/tag-permissions.html), and read keys. The
/// key's own actions are granted by its key policy; its alias is the control's (CreateAlias needs
/// the alias and the key, https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html).
pub fn keys() -> Vec<Value> {
    let tagged = json!({"StringEquals": {"aws:RequestTag/assure:managed": "true"}});
    vec![
        allow_if("LoggingKey", any(), &["kms:CreateKey"], tagged.clone()),
        allow_if("LoggingKeyTags", own("kms", "key/*"), &["kms:TagResource"], tagged),
        read_keys(),
    ]
}

/// The alias `alias` (`alias/…`) given to one of the account's keys.
pub fn key_alias(sid: &str, alias: &str, actions: &[&str]) -> Value {
    allow(sid, json!([own_alias(alias), own("kms", "key/*")]), actions)
}

/// The account's key alias `alias` (`alias/…`), in any region.
fn own_alias(alias: &str) -> Value {
    sub(&format!("arn:${{AWS::Partition}}:kms:*:${{AWS::AccountId}}:{alias}"))
}

/// A statement of the member role that reads without a resource: listings, and what AWS authorizes
/// against whatever the account holds, which assure must see whatever its names.
pub fn read_setup(actions: &[&str]) -> Value {
    allow("ReadSecuritySetup", any(), actions)
}

/// What `kit::ensure_delegated_administrator` does as the management account: trusted access
/// for a service and its delegated administrator.
pub const DELEGATED_ADMINISTRATOR: &[&str] = &[
    "organizations:EnableAWSServiceAccess",
    "organizations:ListAWSServiceAccessForOrganization",
    "organizations:ListDelegatedAdministrators",
    "organizations:RegisterDelegatedAdministrator",
];

/// `grants` with one entry per resource: the actions of grants on the same resource (and
/// condition) joined in their first order, each once.
pub fn joined(grants: impl IntoIterator<Item = Grant>) -> Vec<Grant> {
    let mut out: Vec<Grant> = Vec::new();
    for (resource, actions) in grants {
        let at = match out.iter().position(|(r, _)| r == &resource) {
            Some(i) => i,
            None => {
                out.push((resource, Vec::new()));
                out.len() - 1
            }
        };
        for a in actions {
            if !out[at].1.contains(&a) {
                out[at].1.push(a);
            }
        }
    }
    out
}

/// Policy statements with the statements of one Sid joined: the first one's place, resources and
/// condition, every one's actions, each once. Then, so the role's policy stays within IAM's size
/// limit, statements of other Sids on the same resources with the same condition are one too, under
/// the first one's Sid.
///
/// # Panics
/// When two statements of one Sid differ in anything but their actions: a control declared a
/// statement another declares differently, which the templates' generation refuses.
pub fn joined_statements(statements: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let rest = |s: &Value| {
        let mut s = s.clone();
        s.as_object_mut().map(|o| o.remove("Action"));
        s
    };
    let scope = |s: &Value| (s["Effect"].clone(), s["Resource"].clone(), s["Condition"].clone());
    let mut out: Vec<Value> = Vec::new();
    // Every Sid met, with what its statement says besides its actions.
    let mut seen: Vec<(Value, Value)> = Vec::new();
    for statement in statements {
        let sid = statement["Sid"].clone();
        match seen.iter().find(|(s, _)| *s == sid) {
            Some((_, said)) => {
                assert_eq!(said, &rest(&statement), "two statements {sid} differ in more than their actions")
            }
            None => seen.push((sid, rest(&statement))),
        }
        let Some(first) = out.iter_mut().find(|s| scope(s) == scope(&statement)) else {
            out.push(statement);
            continue;
        };
        let actions = first["Action"].as_array_mut().expect("a statement's actions are a list");
        for a in statement["Action"].as_array().into_iter().flatten() {
            if !actions.contains(a) {
                actions.push(a.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_on_one_resource_are_one_grant_with_each_action_once() {
        let joined = joined([(any(), vec!["a:X", "a:Y"]), (accounts(), vec!["o:Z"]), (any(), vec!["a:Y", "b:W"])]);
        assert_eq!(joined, vec![(any(), vec!["a:X", "a:Y", "b:W"]), (accounts(), vec!["o:Z"])]);
    }

    #[test]
    fn statements_of_one_sid_join_their_actions() {
        let out = joined_statements([
            allow("Read", any(), &["a:X"]),
            allow("Own", own("a", "thing/*"), &["a:Y"]),
            allow("Read", any(), &["b:Z", "a:X"]),
        ]);
        assert_eq!(out, vec![allow("Read", any(), &["a:X", "b:Z"]), allow("Own", own("a", "thing/*"), &["a:Y"])]);
    }

    #[test]
    fn statements_on_the_same_resources_and_condition_are_one() {
        let out = joined_statements([
            allow("Read", any(), &["a:X"]),
            allow("Write", any(), &["a:Y"]),
            allow_if("Guarded", any(), &["a:Z"], json!({"Bool": {"aws:SecureTransport": "true"}})),
        ]);
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(out[0], allow("Read", any(), &["a:X", "a:Y"]));
        assert_eq!(out[1]["Sid"], "Guarded");
    }

    #[test]
    #[should_panic(expected = "two statements \"Read\" differ")]
    fn statements_of_one_sid_on_other_resources_are_refused() {
        joined_statements([allow("Read", any(), &["a:X"]), allow("Read", own("a", "x"), &["a:Y"])]);
    }
}

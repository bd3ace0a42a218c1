//! The roles assure acts through and hands to services, checked for what an administrator of the
//! account could have done to them: the member role exactly as its template makes it, the
//! StackSet's execution roles (whose names the SCPs exempt) trusted only from the management
//! account, and every service role exactly as its control makes it.
//!
//! A role's name is not proof of whose it is. An account can make `AssureExecutionRole` (or
//! `stacksets-exec-x`, or `assure-cloudtrail-logs`) before it is onboarded, trusting its own
//! principals too, with an extra policy or a permissions boundary; the SCPs, which exempt the
//! member role and the StackSet's roles by name, then exempt the administrator. Preflight refuses
//! a member role that is not the template's; the service-roles step takes service roles over;
//! verify checks all three.

use assure_contract::catalogue::{entry, Cis, Entry};
use assure_contract::{AccountId, Evidence, RunInput, StepError, StepName};
use serde_json::Value;

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::controls::kit::{evidence, role_drift, Role};
use crate::controls::{self, Control};
use crate::pipeline::infra::Deployed;

/// The member role as its template makes it, and no StackSet execution role an account made itself.
pub const MEMBER_ROLE: Entry = entry(
    "roles.member-role",
    StepName::Preflight,
    "Prevent removal of Stax Identity Management Service resources",
    Some(Cis { v7: Some("2.1.2"), v3: None, v1_4: None }),
);
/// The roles assure hands to services, as it makes them.
pub const SERVICE_ROLES: Entry = entry(
    "roles.service-roles",
    StepName::ServiceRoles,
    "Prevent removal of Stax Identity Management Service resources",
    None,
);

/// The roles' checks in the catalogue's terms.
pub const ENTRIES: &[Entry] = &[MEMBER_ROLE, SERVICE_ROLES];

/// The member role as the template makes it in `account`, for the pipeline in account `pipeline`.
fn member_template(
    run: &RunInput,
    pipeline: &AccountId,
    account: &str,
) -> Result<crate::pipeline::infra::TemplateRole, StepError> {
    let deployed = Deployed {
        account: pipeline.as_str(),
        management_account: run.org.management.as_str(),
        region: run.home_region.as_str(),
        member_role: &run.role_name,
        checkpoint_bucket: "",
        pipeline_key: "",
        security_account: run.org.security.as_str(),
    };
    deployed.member_role(account).map_err(StepError::internal)
}

/// How the member role in `acct` differs from its template, one line each: its trust, its inline
/// policy, and anything else it has (policies, a boundary).
pub async fn member_role_drift(
    acct: &AccountConfig,
    run: &RunInput,
    pipeline: &AccountId,
) -> Result<Vec<String>, StepError> {
    let template = member_template(run, pipeline, acct.account.as_str())?;
    let Some((policy_name, policy)) = template.policies.first() else {
        return Err(StepError::internal("the member role's template has no policy"));
    };
    let role = Role {
        name: &template.name,
        description: "",
        trust: template.trust.clone(),
        policy_name,
        policy: policy.clone(),
        keep: &[],
    };
    role_drift(acct, &role).await
}

/// The StackSet's execution roles in `acct` (`stacksets-exec-*`, any path) that are not what
/// StackSets makes: a role trusted from outside the management account, or with a boundary. The
/// SCPs exempt these names, so one the account made itself would exempt its maker.
async fn stackset_roles_drift(acct: &AccountConfig, run: &RunInput) -> Result<Vec<String>, StepError> {
    let iam = acct.iam();
    let mut found = Vec::new();
    let mut pages = iam.list_roles().into_paginator().send();
    while let Some(page) = pages.next().await {
        for r in page.aws("iam:ListRoles")?.roles() {
            if r.arn().split(":role/").nth(1).is_some_and(|n| n.starts_with("stacksets-exec-")) {
                found.push(r.role_name().to_owned());
            }
        }
    }
    let mut out = Vec::new();
    for name in found {
        let role = match iam.get_role().role_name(&name).send().await {
            Ok(r) => r.role().cloned(),
            Err(e) if error_code(&e) == Some("NoSuchEntity") => None,
            Err(e) => return Err(e).aws(format!("iam:GetRole {name}")),
        };
        let Some(role) = role else { continue };
        let trust = role.assume_role_policy_document().and_then(crate::aws::decode_policy).unwrap_or(Value::Null);
        let outsiders = principals_outside(&trust, run.org.management.as_str());
        if !outsiders.is_empty() {
            out.push(format!(
                "{name} is trusted by {} (only the management account's StackSets may be)",
                outsiders.join(", ")
            ));
        }
        if let Some(b) = crate::controls::kit::boundary_of(&role) {
            out.push(format!("{name} has the permissions boundary {b}"));
        }
    }
    Ok(out)
}

/// The principals a trust policy's Allow statements admit that are not of `account`.
fn principals_outside(trust: &Value, account: &str) -> Vec<String> {
    let mut out = Vec::new();
    for s in trust["Statement"].as_array().into_iter().flatten().filter(|s| s["Effect"] == "Allow") {
        let principal = &s["Principal"];
        let mut named: Vec<String> = Vec::new();
        match principal {
            Value::String(p) => named.push(p.clone()),
            Value::Object(m) => {
                for (kind, v) in m {
                    let values: Vec<String> = match v {
                        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
                        Value::String(x) => vec![x.clone()],
                        _ => vec![],
                    };
                    named.extend(values.into_iter().map(|x| if kind == "AWS" { x } else { format!("{kind}:{x}") }));
                }
            }
            _ => named.push(principal.to_string()),
        }
        for p in named {
            let of_account = p == account || p.starts_with(&format!("arn:aws:iam::{account}:"));
            if !of_account {
                out.push(p);
            }
        }
    }
    if trust.is_null() {
        out.push("(an unreadable trust policy)".to_owned());
    }
    out
}

/// Verify's evidence for the roles: the member role and the StackSet's roles in the account, and
/// every service role of the run's controls, each where it lives.
pub async fn evidence_for(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    let target = aws.account(&run.account, &run.home_region).await?;
    let (member, stacksets) = futures::try_join!(
        member_role_drift(&target, run, &aws.pipeline().account),
        stackset_roles_drift(&target, run)
    )?;
    let mut problems: Vec<String> = member.into_iter().map(|p| format!("{}: {p}", run.role_name)).collect();
    problems.extend(stacksets);
    let mut out = vec![evidence(
        &target,
        &MEMBER_ROLE,
        format!("iam:role/{}", run.role_name),
        problems.is_empty(),
        if problems.is_empty() {
            format!("{} exactly as its template makes it; every stacksets-exec-* role trusted only from the management account", run.role_name)
        } else {
            problems.join("; ")
        },
    )];
    let roles: Vec<controls::kit::ServiceRole> =
        controls::baseline::ALL.iter().flat_map(|c: &&Control| (c.ahead.service_roles)(run)).collect();
    for r in &roles {
        let acct = aws.account(&r.account, &run.home_region).await?;
        let drift = role_drift(&acct, &r.role).await?;
        out.push(evidence(
            &acct,
            &SERVICE_ROLES,
            format!("iam:role/{}", r.role.name),
            drift.is_empty(),
            if drift.is_empty() {
                "exactly as assure makes it: its trust, its policy, nothing else".to_owned()
            } else {
                drift.join("; ")
            },
        ));
    }
    Ok(out)
}

/// Preflight's check of the member role: one that is not the template's is refused, naming what
/// differs, before anything changes.
pub async fn refuse_tampered_member_role(
    acct: &AccountConfig,
    run: &RunInput,
    pipeline: &AccountId,
) -> Result<(), StepError> {
    let drift = member_role_drift(acct, run, pipeline).await?;
    if drift.is_empty() {
        return Ok(());
    }
    Err(StepError::new(
        assure_contract::ErrorName::Conflict,
        format!(
            "roleName: the role {} in {} is not the one the member-role StackSet makes ({}); the SCPs exempt that role by name, so whoever changed it would be exempt too. Delete it and let the StackSet make it again (or update the stack instance)",
            run.role_name,
            run.account,
            drift.join("; ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::principals_outside;
    use serde_json::json;

    #[test]
    fn a_trust_naming_another_account_or_a_service_is_reported() {
        let ok = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/aws-service-role/stacksets.cloudformation.amazonaws.com/AWSServiceRoleForCloudFormationStackSetsOrgAdmin"}, "Action": "sts:AssumeRole"}]});
        assert!(principals_outside(&ok, "123456789012").is_empty());
        let bad = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["123456789012", "arn:aws:iam::111111111111:root"], "Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        assert_eq!(
            principals_outside(&bad, "123456789012"),
            vec!["arn:aws:iam::111111111111:root".to_owned(), "Service:ec2.amazonaws.com".to_owned()]
        );
        assert_eq!(principals_outside(&json!({"Statement": [{"Effect": "Allow", "Principal": "*"}]}), "1"), vec!["*"]);
        // A Deny admits nobody.
        let deny = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"}]});
        assert!(principals_outside(&deny, "123456789012").is_empty());
    }
}

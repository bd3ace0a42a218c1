//! The IAM roles a control hands to a service, owned whole, and the service-linked roles.

use assure_contract::{AccountId, Change, StepError};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};

use super::{already_exists, Changes};

/// An IAM role a control hands to a service: its trust policy and its one inline policy. assure
/// owns it whole: no other policy, attached or inline (but those named in `keep`, which the
/// control's steps add), and no permissions boundary, whatever the account had under that name.
pub struct Role<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub trust: Value,
    pub policy_name: &'a str,
    pub policy: Value,
    /// Other inline policies the control's steps add to it (see [`ensure_inline_policy`]).
    pub keep: &'a [&'a str],
}

/// What a role has that assure did not give it: its permissions boundary, its attached managed
/// policies, and its inline policies other than `keep`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RoleExtras {
    pub boundary: Option<String>,
    pub attached: Vec<String>,
    pub inline: Vec<String>,
}

impl RoleExtras {
    /// One line per extra, for evidence.
    pub(crate) fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(b) = &self.boundary {
            out.push(format!("permissions boundary {b}"));
        }
        out.extend(self.attached.iter().map(|p| format!("attached policy {p}")));
        out.extend(self.inline.iter().map(|p| format!("inline policy {p}")));
        out
    }
}

/// The permissions boundary of a role as IAM's `GetRole` answers it.
pub(crate) fn boundary_of(role: &aws_sdk_iam::types::Role) -> Option<String> {
    role.permissions_boundary().and_then(|b| b.permissions_boundary_arn()).map(str::to_owned)
}

/// The extras of `role` as found (`found`, from `GetRole`): its inline policy and those in `keep`
/// are assure's.
async fn role_extras(
    acct: &AccountConfig,
    role: &Role<'_>,
    found: &aws_sdk_iam::types::Role,
) -> Result<RoleExtras, StepError> {
    let (iam, name) = (acct.iam(), role.name);
    let assures = |p: &str| p == role.policy_name || role.keep.contains(&p);
    let inline = async {
        let mut out = Vec::new();
        let mut pages = iam.list_role_policies().role_name(name).into_paginator().send();
        while let Some(page) = pages.next().await {
            out.extend(page.aws(format!("iam:ListRolePolicies {name}"))?.policy_names().iter().cloned());
        }
        Ok::<_, StepError>(out)
    };
    let attached = async {
        let mut out = Vec::new();
        let mut pages = iam.list_attached_role_policies().role_name(name).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.aws(format!("iam:ListAttachedRolePolicies {name}"))?;
            out.extend(page.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_owned)));
        }
        Ok::<_, StepError>(out)
    };
    let (inline, attached) = futures::try_join!(inline, attached)?;
    Ok(RoleExtras {
        boundary: boundary_of(found),
        attached,
        inline: inline.into_iter().filter(|p| !assures(p)).collect(),
    })
}

/// The role's extras removed, each recorded with what it was (a boundary's ARN, an attached
/// policy's ARN, an inline policy's document), so that rollback can put them back.
async fn remove_extras(
    acct: &AccountConfig,
    name: &str,
    extras: &RoleExtras,
    changes: &mut Changes,
) -> Result<(), StepError> {
    let iam = acct.iam();
    if let Some(b) = &extras.boundary {
        if changes.live() {
            iam.delete_role_permissions_boundary()
                .role_name(name)
                .send()
                .await
                .aws(format!("iam:DeleteRolePermissionsBoundary {name}"))?;
        }
        changes.push(format!("iam:role/{name}/boundary"), "delete", json!(b), Value::Null);
    }
    for arn in &extras.attached {
        if changes.live() {
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .aws(format!("iam:DetachRolePolicy {name} {arn}"))?;
        }
        changes.push(format!("iam:role/{name}/attached/{arn}"), "detach", json!(arn), Value::Null);
    }
    for policy in &extras.inline {
        let doc = iam
            .get_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .aws(format!("iam:GetRolePolicy {name} {policy}"))?;
        if changes.live() {
            iam.delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .aws(format!("iam:DeleteRolePolicy {name} {policy}"))?;
        }
        changes.push(
            format!("iam:role/{name}/{policy}"),
            "delete",
            json!(crate::aws::decode_policy(doc.policy_document())),
            Value::Null,
        );
    }
    Ok(())
}

/// What rollback does with a role assure ensured in `acct` (`name`), from the run's recorded
/// changes to it (`changes`, in the order made; `unknown`: a step that may have ensured it did not
/// complete, so its changes are not recorded):
/// - made by the run, or unknown: removed, with its inline policies and attachments;
/// - there before the run: put back as it was, each recorded change undone in reverse (its trust,
///   its inline policies, its attached policies, its permissions boundary);
/// - there before and untouched: left alone.
///
/// Answers the report line, if anything was done.
pub(crate) async fn restore_role(
    acct: &AccountConfig,
    name: &str,
    changes: &[&Change],
    unknown: bool,
) -> Result<Option<String>, StepError> {
    let role = format!("iam:role/{name}");
    let made = changes.iter().any(|c| c.action == "create" && c.resource == role);
    if made || unknown {
        return remove_role(acct, name).await;
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let iam = acct.iam();
    let prefix = format!("{role}/");
    for change in changes.iter().rev() {
        let part = change.resource.strip_prefix(&prefix).unwrap_or_default();
        let before = &change.before;
        match (change.action.as_str(), part) {
            ("update", "trust") => {
                if let Some(doc) = before.as_object() {
                    iam.update_assume_role_policy()
                        .role_name(name)
                        .policy_document(Value::Object(doc.clone()).to_string())
                        .send()
                        .await
                        .aws(format!("iam:UpdateAssumeRolePolicy {name}"))?;
                }
            }
            ("delete", "boundary") => {
                if let Some(arn) = before.as_str() {
                    iam.put_role_permissions_boundary()
                        .role_name(name)
                        .permissions_boundary(arn)
                        .send()
                        .await
                        .aws(format!("iam:PutRolePermissionsBoundary {name}"))?;
                }
            }
            ("detach", attached) if attached.starts_with("attached/") => {
                if let Some(arn) = before.as_str() {
                    match iam.attach_role_policy().role_name(name).policy_arn(arn).send().await {
                        Ok(_) => {}
                        // The policy is gone since: nothing to attach.
                        Err(e) if error_code(&e) == Some("NoSuchEntity") => {}
                        Err(e) => return Err(e).aws(format!("iam:AttachRolePolicy {name} {arn}")),
                    }
                }
            }
            // An inline policy: assure's own put back as it was (or removed, if it had none), or
            // another one assure deleted put back.
            ("update" | "delete", policy) if !policy.is_empty() && !policy.contains('/') => match before {
                Value::Object(_) => {
                    iam.put_role_policy()
                        .role_name(name)
                        .policy_name(policy)
                        .policy_document(before.to_string())
                        .send()
                        .await
                        .aws(format!("iam:PutRolePolicy {name} {policy}"))?;
                }
                _ => delete_inline_policy(acct, name, policy).await?,
            },
            _ => {}
        }
    }
    Ok(Some(format!("the role {name} put back as it was before the run ({} change(s) undone)", changes.len())))
}

/// The role `name` as IAM's `GetRole` answers it, or None when there is none.
async fn read_role(acct: &AccountConfig, name: &str) -> Result<Option<aws_sdk_iam::types::Role>, StepError> {
    match acct.iam().get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role().cloned()),
        Err(e) if error_code(&e) == Some("NoSuchEntity") => Ok(None),
        Err(e) => Err(e).aws(format!("iam:GetRole {name}")),
    }
}

/// The inline policy `policy` of the role `name` deleted; one already gone is fine.
async fn delete_inline_policy(acct: &AccountConfig, name: &str, policy: &str) -> Result<(), StepError> {
    match acct.iam().delete_role_policy().role_name(name).policy_name(policy).send().await {
        Ok(_) => Ok(()),
        Err(e) if error_code(&e) == Some("NoSuchEntity") => Ok(()),
        Err(e) => Err(e).aws(format!("iam:DeleteRolePolicy {name} {policy}")),
    }
}

/// The role removed, whatever it holds: inline policies, attached policies, boundary.
async fn remove_role(acct: &AccountConfig, name: &str) -> Result<Option<String>, StepError> {
    let iam = acct.iam();
    let Some(found) = read_role(acct, name).await? else { return Ok(None) };
    let everything =
        Role { name, description: "", trust: Value::Null, policy_name: "", policy: Value::Null, keep: &[] };
    let extras = role_extras(acct, &everything, &found).await?;
    for policy in &extras.inline {
        delete_inline_policy(acct, name, policy).await?;
    }
    for arn in &extras.attached {
        iam.detach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .aws(format!("iam:DetachRolePolicy {name} {arn}"))?;
    }
    match iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(Some(format!("the role {name} removed"))),
        Err(e) if error_code(&e) == Some("NoSuchEntity") => Ok(None),
        Err(e) => Err(e).aws(format!("iam:DeleteRole {name}")),
    }
}

/// How the role `role` in `acct` differs from what assure makes, one line each (empty: it is
/// exactly assure's): verify's check of a role assure owns.
pub(crate) async fn role_drift(acct: &AccountConfig, role: &Role<'_>) -> Result<Vec<String>, StepError> {
    let Some(found) = read_role(acct, role.name).await? else { return Ok(vec!["it does not exist".to_owned()]) };
    let mut out = Vec::new();
    if found.assume_role_policy_document().and_then(crate::aws::decode_policy).as_ref() != Some(&role.trust) {
        out.push("its trust policy is not assure's".to_owned());
    }
    if inline_policy(acct, role.name, role.policy_name).await?.as_ref() != Some(&role.policy) {
        out.push(format!("its inline policy {} is not assure's", role.policy_name));
    }
    out.extend(role_extras(acct, role, &found).await?.describe());
    Ok(out)
}

/// A role kept as desired (created, or its trust and inline policy put back); answers its ARN.
/// Once per task and account: the task's regions share the first one's work.
pub(crate) async fn ensure_role(
    acct: &AccountConfig,
    role: &Role<'_>,
    changes: &mut Changes,
) -> Result<String, StepError> {
    acct.account_wide(&format!("role/{}", role.name), ensure_role_here(acct, role, changes)).await
}

async fn ensure_role_here(acct: &AccountConfig, role: &Role<'_>, changes: &mut Changes) -> Result<String, StepError> {
    let Role { name, description, trust, policy_name, policy, .. } = role;
    let (name, description, policy_name) = (*name, *description, *policy_name);
    let iam = acct.iam();
    let arn = format!("arn:aws:iam::{}:role/{name}", acct.account);
    // A role made just now (or that the plan would make) has no inline policy to read.
    let mut made = false;
    match iam.get_role().role_name(name).send().await {
        Ok(out) => {
            // A role of this name made before assure (by the account's administrator, say) is
            // taken over: whatever else it has goes, recorded.
            if let Some(found) = out.role() {
                let extras = role_extras(acct, role, found).await?;
                remove_extras(acct, name, &extras, changes).await?;
            }
            let current = out.role().and_then(|r| r.assume_role_policy_document()).and_then(crate::aws::decode_policy);
            if current.as_ref() != Some(trust) {
                if changes.live() {
                    iam.update_assume_role_policy()
                        .role_name(name)
                        .policy_document(trust.to_string())
                        .send()
                        .await
                        .aws(format!("iam:UpdateAssumeRolePolicy {name}"))?;
                }
                changes.push(format!("iam:role/{name}/trust"), "update", json!(current), trust.clone());
            }
        }
        Err(e) if error_code(&e) == Some("NoSuchEntity") && !changes.live() => {
            changes.push(format!("iam:role/{name}"), "create", Value::Null, trust.clone());
            made = true;
        }
        Err(e) if error_code(&e) == Some("NoSuchEntity") => {
            let created = iam
                .create_role()
                .role_name(name)
                .description(description)
                .assume_role_policy_document(trust.to_string())
                .send()
                .await;
            match created {
                Ok(_) => {
                    changes.push(format!("iam:role/{name}"), "create", Value::Null, trust.clone());
                    made = true;
                }
                // IAM is global and regions run in parallel: another region created it first.
                Err(e) if already_exists(error_code(&e), "") => {}
                Err(e) => return Err(e).aws(format!("iam:CreateRole {name}")),
            }
        }
        Err(e) => return Err(e).aws(format!("iam:GetRole {name}")),
    }
    ensure_inline_policy(acct, name, policy_name, policy, made, changes).await?;
    Ok(arn)
}

/// The inline policy `policy_name` of the role `name`, if it has one.
async fn inline_policy(acct: &AccountConfig, name: &str, policy_name: &str) -> Result<Option<Value>, StepError> {
    match acct.iam().get_role_policy().role_name(name).policy_name(policy_name).send().await {
        Ok(out) => Ok(crate::aws::decode_policy(out.policy_document())),
        Err(e) if error_code(&e) == Some("NoSuchEntity") => Ok(None),
        Err(e) => Err(e).aws(format!("iam:GetRolePolicy {name}")),
    }
}

/// The inline policy `policy_name` of the role `name` kept as `policy`; `absent`: the role was
/// made a moment ago without it, so there is nothing to read.
pub(crate) async fn ensure_inline_policy(
    acct: &AccountConfig,
    name: &str,
    policy_name: &str,
    policy: &Value,
    absent: bool,
    changes: &mut Changes,
) -> Result<(), StepError> {
    let iam = acct.iam();
    let current = if absent { None } else { inline_policy(acct, name, policy_name).await? };
    if current.as_ref() != Some(policy) {
        if changes.live() {
            iam.put_role_policy()
                .role_name(name)
                .policy_name(policy_name)
                .policy_document(policy.to_string())
                .send()
                .await
                .aws(format!("iam:PutRolePolicy {name}"))?;
        }
        changes.push(format!("iam:role/{name}/{policy_name}"), "update", json!(current), policy.clone());
    }
    Ok(())
}

/// A role a control hands to a service, in the account `account`, which the run's service-roles
/// step makes ahead (see [`crate::controls::Ahead::service_roles`]).
pub struct ServiceRole {
    pub account: AccountId,
    pub role: Role<'static>,
}

/// The role ensured, with whether this run made it (so it has no other inline policy yet): as the
/// run's service-roles step recorded it, reading nothing, or else ensured here (a plan, a bulk
/// run's organization step, a step retried after a service-roles step that did not finish).
pub(crate) async fn service_role(
    aws: &Aws,
    acct: &AccountConfig,
    role: &Role<'_>,
    changes: &mut Changes,
) -> Result<(String, bool), StepError> {
    if let Some(fact) = aws.role_fact(&acct.account, role.name).await {
        return Ok((fact.arn, fact.made));
    }
    let before = changes.list.len();
    let arn = ensure_role(acct, role, changes).await?;
    Ok((arn, made_role(&changes.list[before..], role.name)))
}

/// Whether `changes` create the role `name`.
pub(crate) fn made_role(changes: &[Change], name: &str) -> bool {
    let resource = format!("iam:role/{name}");
    changes.iter().any(|c| c.action == "create" && c.resource == resource)
}

/// The service-linked role a service needs, created once per account. Regions race for it; the
/// loser finds it there.
pub(crate) async fn ensure_service_linked_role(
    acct: &AccountConfig,
    service: &str,
    name: &str,
    changes: &mut Changes,
) -> Result<(), StepError> {
    let work = async { ensure_service_linked_role_here(acct, service, name, changes).await.map(|()| String::new()) };
    acct.account_wide(&format!("service-linked-role/{name}"), work).await.map(|_| ())
}

async fn ensure_service_linked_role_here(
    acct: &AccountConfig,
    service: &str,
    name: &str,
    changes: &mut Changes,
) -> Result<(), StepError> {
    let iam = acct.iam();
    match iam.get_role().role_name(name).send().await {
        Ok(_) => return Ok(()),
        Err(e) if error_code(&e) == Some("NoSuchEntity") => {}
        Err(e) => return Err(e).aws(format!("iam:GetRole {name}")),
    }
    if !changes.live() {
        changes.push(format!("iam:role/{name}"), "create", Value::Null, json!({"service": service}));
        return Ok(());
    }
    match iam.create_service_linked_role().aws_service_name(service).send().await {
        Ok(_) => {
            changes.push(format!("iam:role/{name}"), "create", Value::Null, json!({"service": service}));
            Ok(())
        }
        Err(e)
            if already_exists(error_code(&e), &e.to_string())
                || e.as_service_error().is_some_and(|s| s.to_string().contains("has been taken")) =>
        {
            Ok(())
        }
        Err(e) => Err(e).aws(format!("iam:CreateServiceLinkedRole {service}")),
    }
}

//! What every control uses: the change recorder (plan mode records, live mode also writes), one
//! piece of evidence, the "already exists" answers of parallel regions, the IAM roles a control
//! hands to a service, and customer managed keys (the logging key every control encrypts with,
//! the alarm topic's key).

use assure_contract::{AccountId, Change, ErrorName, Evidence, Region, RunInput, StepError, StepName, StepOutput};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt, LOGGING_KEY_FACT};
use crate::controls::names::TRAIL_LOG_GROUP;

/// The changes a step makes, as it makes them.
pub(crate) struct Changes {
    account: AccountId,
    region: Region,
    plan: bool,
    pub(crate) list: Vec<Change>,
}

impl Changes {
    pub(crate) fn new(acct: &AccountConfig) -> Changes {
        Changes { account: acct.account.clone(), region: acct.region.clone(), plan: acct.plan, list: Vec::new() }
    }

    /// False in plan mode: the step records the change and does not make it.
    pub(crate) fn live(&self) -> bool {
        !self.plan
    }

    /// Records a change made in the account and region this recorder was made for.
    pub(crate) fn push(&mut self, resource: impl Into<String>, action: &str, before: Value, after: Value) {
        let (account, region) = (self.account.clone(), self.region.clone());
        self.push_in(account, region, resource, action, before, after);
    }

    /// Records a change made in another account or region.
    pub(crate) fn push_in(
        &mut self,
        account: AccountId,
        region: Region,
        resource: impl Into<String>,
        action: &str,
        before: Value,
        after: Value,
    ) {
        self.list.push(Change { account, region, resource: resource.into(), action: action.to_owned(), before, after });
    }

    /// The step's output: a one-line summary, the changes, the snapshot.
    pub(crate) fn output(self, step: StepName, region: &Region, what: &str, snapshot: Value) -> StepOutput {
        let n = self.list.len();
        StepOutput {
            step,
            region: region.clone(),
            summary: summary(what, n),
            changes: self.list,
            evidence: vec![],
            snapshot,
        }
    }
}

/// A step's one-line summary of `n` changes to `what`.
pub(crate) fn summary(what: &str, n: usize) -> String {
    if n == 0 {
        format!("{what}: already in place")
    } else {
        format!("{what}: {n} change(s)")
    }
}

/// One piece of evidence about `acct`.
pub(crate) fn evidence(
    acct: &AccountConfig,
    control: &str,
    resource: impl Into<String>,
    passed: bool,
    detail: impl Into<String>,
) -> Evidence {
    debug_assert!(assure_contract::Control::find(control).is_some(), "unknown control {control}");
    Evidence::new(control, acct.account.clone(), acct.region.clone(), resource, passed, detail)
}

/// Whether an AWS error code says "it is already there": concurrent regions of one run race to
/// create account-wide things (service-linked roles, delegated administrators), and the loser is fine.
pub(crate) fn already_exists(code: Option<&str>, message: &str) -> bool {
    matches!(
        code,
        Some(
            "EntityAlreadyExists"
                | "EntityAlreadyExistsException"
                | "AccountAlreadyRegisteredException"
                | "ResourceAlreadyExistsException"
                | "ConflictException"
                | "DuplicatePolicyAttachmentException"
        )
    ) || message.contains("already exists")
        || message.contains("has been taken in this account")
}

/// The logging key's ARN for a step that hands it to a service: as the run's logging-bucket step
/// (or a bulk run's organization step) ensured the key, or else [`logging_key_arn`]. Not for
/// verify, which finds the key itself.
pub(crate) async fn logging_key_to_use(aws: &Aws, run: &RunInput) -> Result<String, StepError> {
    let organized = run.organization.as_ref().and_then(|o| o["logging-bucket"][LOGGING_KEY_FACT].as_str());
    if let Some(arn) = organized.filter(|_| !aws.pipeline().plan) {
        return Ok(arn.to_owned());
    }
    if let Some(arn) = aws.fact(LOGGING_KEY_FACT).await.as_ref().and_then(Value::as_str) {
        return Ok(arn.to_owned());
    }
    logging_key_arn(aws, run).await
}

/// The logging key's ARN (one `kms:DescribeKey`); the logging bucket step must have run.
pub(crate) async fn logging_key_arn(aws: &Aws, run: &RunInput) -> Result<String, StepError> {
    let logging = aws.account(&run.org.logging, &run.home_region).await?;
    logging.account_wide("logging-key", logging_key_lookup(&logging, run)).await
}

async fn logging_key_lookup(logging: &AccountConfig, run: &RunInput) -> Result<String, StepError> {
    let found = key_arn(logging, RunInput::LOGGING_KEY_ALIAS).await?;
    if found.is_none() && logging.plan {
        return Ok(planned_key_arn(logging, RunInput::LOGGING_KEY_ALIAS));
    }
    found.ok_or_else(|| {
        StepError::new(
            ErrorName::Conflict,
            format!(
                "the logging key {} is missing in account {}: the logging-bucket step must run first",
                RunInput::LOGGING_KEY_ALIAS,
                run.org.logging
            ),
        )
    })
}

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
/// step makes ahead (see [`crate::controls::Control::service_roles`]).
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
    let fact = aws.fact(&crate::aws::role_fact(&acct.account, role.name)).await;
    if let Some(arn) = fact.as_ref().and_then(|f| f["arn"].as_str()) {
        return Ok((arn.to_owned(), fact.as_ref().is_some_and(|f| f["made"] == true)));
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

/// The ARN a plan shows for a key it would create (its alias ARN).
pub(crate) fn planned_key_arn(acct: &AccountConfig, alias: &str) -> String {
    format!("arn:aws:kms:{}:{}:{alias}", acct.region, acct.account)
}

/// A key's ARN, found by its alias, or None.
pub(crate) async fn key_arn(acct: &AccountConfig, alias: &str) -> Result<Option<String>, StepError> {
    match acct.kms().describe_key().key_id(alias).send().await {
        Ok(out) => Ok(out.key_metadata().and_then(|k| k.arn()).map(str::to_owned)),
        Err(e) if error_code(&e) == Some("NotFoundException") => Ok(None),
        Err(e) => Err(e).aws(format!("kms:DescribeKey {alias}")),
    }
}

/// What the key looks like now.
#[derive(Debug, Clone)]
pub struct KeyState {
    pub arn: String,
    pub key_id: String,
    pub rotation: bool,
    pub policy: Option<Value>,
    /// `Enabled`, `Disabled`, `PendingDeletion`, …: a key in any state but `Enabled` encrypts nothing.
    pub state: String,
}

/// Finds a key by its alias, with its rotation and policy.
pub async fn read_key(acct: &AccountConfig, alias: &str) -> Result<Option<KeyState>, StepError> {
    let kms = acct.kms();
    let key = match kms.describe_key().key_id(alias).send().await {
        Ok(out) => out.key_metadata().cloned(),
        Err(e) if error_code(&e) == Some("NotFoundException") => return Ok(None),
        Err(e) => return Err(e).aws(format!("kms:DescribeKey {alias}")),
    };
    let Some(key) = key else { return Ok(None) };
    let key_id = key.key_id().to_owned();
    let rotation = async {
        kms.get_key_rotation_status()
            .key_id(&key_id)
            .send()
            .await
            .aws(format!("kms:GetKeyRotationStatus {key_id}"))
            .map(|o| o.key_rotation_enabled())
    };
    let policy = async {
        kms.get_key_policy()
            .key_id(&key_id)
            .policy_name("default")
            .send()
            .await
            .aws(format!("kms:GetKeyPolicy {key_id}"))
            .map(|o| o.policy().and_then(|p| serde_json::from_str(p).ok()))
    };
    let (rotation, policy) = futures::try_join!(rotation, policy)?;
    Ok(Some(KeyState {
        arn: key.arn().unwrap_or_default().to_owned(),
        key_id,
        rotation,
        policy,
        state: key.key_state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
    }))
}

/// A customer managed key under `alias`, with rotation on and exactly the `desired` key policy,
/// tagged `assure:managed`. Created once; another run creating it at the same moment wins, and this
/// run's key, which encrypted nothing, is scheduled for deletion.
pub(crate) async fn ensure_key(
    acct: &AccountConfig,
    alias: &str,
    description: &str,
    desired: Value,
    changes: &mut Changes,
) -> Result<KeyState, StepError> {
    let kms = acct.kms();
    let mut key = match read_key(acct, alias).await? {
        Some(k) => k,
        None if !changes.live() => {
            changes.push(format!("kms:{}", alias), "create", Value::Null, json!({"rotation": true}));
            // The key the plan would create: rotation and policy as desired, nothing more to plan.
            return Ok(KeyState {
                arn: planned_key_arn(acct, alias),
                key_id: String::new(),
                rotation: true,
                policy: Some(desired),
                state: "Enabled".to_owned(),
            });
        }
        None => {
            let out = kms
                .create_key()
                .description(description)
                .policy(desired.to_string())
                .tags(
                    aws_sdk_kms::types::Tag::builder()
                        .tag_key("assure:managed")
                        .tag_value("true")
                        .build()
                        .expect("tag"),
                )
                .send()
                .await
                .aws("kms:CreateKey")?;
            let meta = out.key_metadata().ok_or_else(|| StepError::internal("kms:CreateKey returned no key"))?;
            let k = KeyState {
                arn: meta.arn().unwrap_or_default().to_owned(),
                key_id: meta.key_id().to_owned(),
                rotation: false,
                policy: Some(desired.clone()),
                state: "Enabled".to_owned(),
            };
            let aliased = kms.create_alias().alias_name(alias).target_key_id(&k.key_id).send().await;
            match aliased {
                Ok(_) => {
                    changes.push(format!("kms:{}", alias), "create", Value::Null, json!({"keyArn": k.arn}));
                    k
                }
                // Another account's run (a bulk run) created the organization's key a moment ago.
                // Ours encrypted nothing: schedule it for deletion and use theirs.
                Err(e) if error_code(&e) == Some("AlreadyExistsException") => {
                    kms.schedule_key_deletion()
                        .key_id(&k.key_id)
                        .pending_window_in_days(7)
                        .send()
                        .await
                        .aws("kms:ScheduleKeyDeletion")?;
                    read_key(acct, alias).await?.ok_or_else(|| {
                        StepError::new(
                            ErrorName::Conflict,
                            format!("kms:CreateAlias {}: exists, but cannot be read yet", alias),
                        )
                    })?
                }
                Err(e) => return Err(e).aws(format!("kms:CreateAlias {}", alias)),
            }
        }
    };
    // A key scheduled for deletion or disabled encrypts nothing: deletion cancelled (which leaves
    // it disabled), then enabled, before its rotation can be read or changed
    // (https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys-scheduling-key-deletion.html).
    if key.state == "PendingDeletion" {
        if changes.live() {
            kms.cancel_key_deletion().key_id(&key.key_id).send().await.aws(format!("kms:CancelKeyDeletion {alias}"))?;
        }
        changes.push(format!("kms:{}/deletion", key.arn), "cancel", json!("PendingDeletion"), json!("Disabled"));
        key.state = "Disabled".to_owned();
    }
    if key.state == "Disabled" {
        if changes.live() {
            kms.enable_key().key_id(&key.key_id).send().await.aws(format!("kms:EnableKey {alias}"))?;
        }
        changes.push(format!("kms:{}/state", key.arn), "update", json!("Disabled"), json!("Enabled"));
        key.state = "Enabled".to_owned();
    }
    if !key.rotation {
        if changes.live() {
            kms.enable_key_rotation().key_id(&key.key_id).send().await.aws("kms:EnableKeyRotation")?;
        }
        changes.push(format!("kms:{}/rotation", key.arn), "update", json!(false), json!(true));
        key.rotation = true;
    }
    if key.policy.as_ref() != Some(&desired) {
        if changes.live() {
            kms.put_key_policy()
                .key_id(&key.key_id)
                .policy_name("default")
                .policy(desired.to_string())
                .send()
                .await
                .aws("kms:PutKeyPolicy")?;
        }
        changes.push(
            format!("kms:{}/policy", key.arn),
            "update",
            key.policy.clone().unwrap_or(Value::Null),
            desired.clone(),
        );
        key.policy = Some(desired);
    }
    Ok(key)
}

/// Trusted access for `principal` in the organization and `admin` registered as the service's
/// delegated administrator, from the management account `mgmt` (Organizations is global; the
/// changes are recorded in `region`, the step's). Organization-wide and shared by every account's
/// run, so never compensated. Regions run in parallel: a registration another region made first
/// is fine. Answers whether `admin` was not registered before (so registered now, or in a plan
/// would be).
pub(crate) async fn ensure_delegated_administrator(
    mgmt: &AccountConfig,
    region: &Region,
    principal: &str,
    admin: &AccountId,
    changes: &mut Changes,
) -> Result<bool, StepError> {
    let work = async {
        let registered = ensure_delegated_administrator_here(mgmt, region, principal, admin, changes).await?;
        Ok(if registered { "registered".to_owned() } else { String::new() })
    };
    Ok(!mgmt.account_wide(&format!("delegated-administrator/{principal}/{admin}"), work).await?.is_empty())
}

/// The accounts Organizations has registered as `principal`'s delegated administrators, read from
/// the management account once per task (every region of it shares the answer).
pub async fn registered_administrators(mgmt: &AccountConfig, principal: &str) -> Result<Vec<String>, StepError> {
    let read = async {
        let admins = mgmt
            .organizations()
            .list_delegated_administrators()
            .service_principal(principal)
            .send()
            .await
            .aws(format!("organizations:ListDelegatedAdministrators {principal}"))?;
        Ok(admins.delegated_administrators().iter().filter_map(|a| a.id()).collect::<Vec<_>>().join(","))
    };
    let joined = mgmt.account_wide(&format!("registered-administrators/{principal}"), read).await?;
    Ok(joined.split(',').filter(|a| !a.is_empty()).map(str::to_owned).collect())
}

/// Trusted access for the service `principal` enabled in the organization (from the management
/// account `mgmt`), recorded as a change when it was not.
pub(crate) async fn ensure_trusted_access(
    mgmt: &AccountConfig,
    region: &Region,
    principal: &str,
    changes: &mut Changes,
) -> Result<(), StepError> {
    let orgs = mgmt.organizations();
    let access = orgs
        .list_aws_service_access_for_organization()
        .send()
        .await
        .aws("organizations:ListAWSServiceAccessForOrganization")?;
    if !access.enabled_service_principals().iter().any(|p| p.service_principal() == Some(principal)) {
        if changes.live() {
            orgs.enable_aws_service_access()
                .service_principal(principal)
                .send()
                .await
                .aws(format!("organizations:EnableAWSServiceAccess {principal}"))?;
        }
        changes.push_in(
            mgmt.account.clone(),
            region.clone(),
            format!("organizations:trustedAccess/{principal}"),
            "enable",
            json!(false),
            json!(true),
        );
    }
    Ok(())
}

async fn ensure_delegated_administrator_here(
    mgmt: &AccountConfig,
    region: &Region,
    principal: &str,
    admin: &AccountId,
    changes: &mut Changes,
) -> Result<bool, StepError> {
    ensure_trusted_access(mgmt, region, principal, changes).await?;
    let orgs = mgmt.organizations();
    let admins = orgs
        .list_delegated_administrators()
        .service_principal(principal)
        .send()
        .await
        .aws("organizations:ListDelegatedAdministrators")?;
    if admins.delegated_administrators().iter().any(|a| a.id() == Some(admin.as_str())) {
        return Ok(false);
    }
    if changes.live() {
        match orgs
            .register_delegated_administrator()
            .account_id(admin.as_str())
            .service_principal(principal)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if already_exists(error_code(&e), "") => return Ok(false),
            Err(e) => return Err(e).aws("organizations:RegisterDelegatedAdministrator"),
        }
    }
    changes.push_in(
        mgmt.account.clone(),
        region.clone(),
        format!("organizations:delegatedAdministrator/{principal}"),
        "register",
        Value::Null,
        json!(admin),
    );
    Ok(true)
}

/// The trail's log group as [`trail_log_group`] found or made it.
pub(crate) enum LogGroup {
    /// There already, with its retention in days.
    Found(Option<i32>),
    /// Made now.
    Made,
    /// Missing, in a plan: to be made.
    Planned,
}

/// The trail's log group, made if missing. The CloudTrail step and the alarms step (whose filters
/// are on it) run side by side and both call this: whichever comes first makes it and records the
/// change, the other takes `ResourceAlreadyExistsException` as found. A plan records nothing here.
pub(crate) async fn trail_log_group(target: &AccountConfig, changes: &mut Changes) -> Result<LogGroup, StepError> {
    let logs = target.logs();
    let groups =
        logs.describe_log_groups().log_group_name_prefix(TRAIL_LOG_GROUP).send().await.aws("logs:DescribeLogGroups")?;
    if let Some(g) = groups.log_groups().iter().find(|g| g.log_group_name() == Some(TRAIL_LOG_GROUP)) {
        return Ok(LogGroup::Found(g.retention_in_days()));
    }
    if !changes.live() {
        return Ok(LogGroup::Planned);
    }
    match logs.create_log_group().log_group_name(TRAIL_LOG_GROUP).send().await {
        Ok(_) => {
            changes.push(format!("logs:{TRAIL_LOG_GROUP}"), "create", Value::Null, json!({}));
            Ok(LogGroup::Made)
        }
        // The other step made it a moment ago (with no retention: that is this step's to set).
        Err(e) if error_code(&e) == Some("ResourceAlreadyExistsException") => Ok(LogGroup::Found(None)),
        Err(e) => Err(e).aws(format!("logs:CreateLogGroup {TRAIL_LOG_GROUP}")),
    }
}

//! Centralized root access (`options.root_access = "centralized"`, CIS AWS Foundations v7.0.0
//! 2.1.1): the member account keeps no long-lived root credentials, and the management account
//! takes a short root session scoped to one task when a root-only task is needed
//! (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user.html#id_root-user-access-management).
//!
//! Once for the organization, from the management account: trusted access for IAM
//! (`iam.amazonaws.com`), then root credentials management and root sessions
//! (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-enable-root-access.html). For each
//! onboarded account: an `sts:AssumeRoot` session scoped to AWS's `IAMDeleteRootUserCredentials`
//! task policy deletes the root user's password, access keys and signing certificates and
//! deactivates its MFA devices, the calls AWS's "Perform a privileged task" page lists
//! (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user-privileged-task.html).
//!
//! What was deleted is recorded by id in the step's snapshot, never a secret. Rollback cannot bring
//! deleted credentials back (AWS keeps no copy); where the account had a root password it lets the
//! root user recover one again (`IAMCreateRootUserPassword`, `iam:CreateLoginProfile` with no user
//! name) and says the rest is not restorable. The organization's features stay: other accounts
//! rely on them.

use assure_contract::{AccountId, Evidence, Region, RootAccess, RunInput, StepError};
use aws_sdk_iam::types::SummaryKeyType;
use aws_sdk_sts::types::PolicyDescriptorType;
use serde_json::{json, Value};

use super::catalogue;
use crate::aws::{error_code, AccountConfig, AwsResultExt, SessionCredentials};
use crate::controls::kit::{ensure_trusted_access, evidence, Changes};
use crate::controls::Report;

/// IAM's service principal, for trusted access.
const IAM_PRINCIPAL: &str = "iam.amazonaws.com";
/// The organization's features, as `iam:ListOrganizationsFeatures` names them.
const FEATURES: [&str; 2] = ["RootCredentialsManagement", "RootSessions"];
/// AWS's task policies for root sessions (API_AssumeRoot, TaskPolicyArn).
pub const DELETE_TASK: &str = "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials";
pub const PASSWORD_TASK: &str = "arn:aws:iam::aws:policy/root-task/IAMCreateRootUserPassword";

/// Whether the run asks for centralized root access.
pub fn wanted(run: &RunInput) -> bool {
    run.root_access == RootAccess::Centralized
}

/// The organization's part: trusted access for IAM and both features enabled, from the
/// management account. Changes are recorded; a plan makes none.
pub(super) async fn organize(mgmt: &AccountConfig, changes: &mut Changes) -> Result<(), StepError> {
    ensure_trusted_access(mgmt, &mgmt.region, IAM_PRINCIPAL, changes).await?;
    let iam = mgmt.iam();
    let enabled = if changes.live() {
        // IAM learns of trusted access a moment after Organizations enabled it (just above, by this
        // run or another): until then it answers ServiceAccessNotEnabledException. Bounded.
        features_once_trusted(mgmt).await?
    } else {
        // Before trusted access, IAM answers ServiceAccessNotEnabledException: nothing is enabled.
        features(mgmt).await.unwrap_or_default()
    };
    for feature in FEATURES {
        if enabled.iter().any(|f| f == feature) {
            continue;
        }
        if changes.live() {
            match feature {
                "RootCredentialsManagement" => iam
                    .enable_organizations_root_credentials_management()
                    .send()
                    .await
                    .map(|_| ())
                    .aws("iam:EnableOrganizationsRootCredentialsManagement")?,
                _ => iam
                    .enable_organizations_root_sessions()
                    .send()
                    .await
                    .map(|_| ())
                    .aws("iam:EnableOrganizationsRootSessions")?,
            }
        }
        changes.push(format!("iam:organizationsFeatures/{feature}"), "enable", json!(false), json!(true));
    }
    Ok(())
}

/// The features enabled for the organization.
async fn features(mgmt: &AccountConfig) -> Result<Vec<String>, StepError> {
    let out = mgmt.iam().list_organizations_features().send().await.aws("iam:ListOrganizationsFeatures")?;
    Ok(out.enabled_features().iter().map(|f| f.as_str().to_owned()).collect())
}

/// [`features`], right after trusted access for IAM was ensured: IAM's refusal while it learns of
/// it is retried, bounded ([`crate::aws::while_propagating`]).
async fn features_once_trusted(mgmt: &AccountConfig) -> Result<Vec<String>, StepError> {
    let out = crate::aws::while_propagating(crate::aws::trusted_access_propagating, || {
        mgmt.iam().list_organizations_features().send()
    })
    .await
    .aws("iam:ListOrganizationsFeatures")?;
    Ok(out.enabled_features().iter().map(|f| f.as_str().to_owned()).collect())
}

/// A root session in `account`, scoped to `task`, as the management account `mgmt` takes it.
async fn root_session(mgmt: &AccountConfig, account: &AccountId, task: &str) -> Result<AccountConfig, StepError> {
    let out = mgmt
        .sts()
        .assume_root()
        .target_principal(account.as_str())
        .task_policy_arn(PolicyDescriptorType::builder().arn(task).build())
        .duration_seconds(900)
        .send()
        .await
        .aws(format!("sts:AssumeRoot {account} {}", task.rsplit('/').next().unwrap_or(task)))?;
    let creds = out
        .credentials()
        .ok_or_else(|| StepError::internal(format!("sts:AssumeRoot {account}: no credentials in the answer")))?;
    let mut root = mgmt.with_credentials(&SessionCredentials {
        access_key_id: creds.access_key_id().to_owned(),
        secret_access_key: creds.secret_access_key().to_owned(),
        session_token: Some(creds.session_token().to_owned()),
    });
    root.account = account.clone();
    Ok(root)
}

/// The root user's long-lived credentials, by id: whether it has a password, its access keys,
/// signing certificates and MFA devices. Read as the root session (no user name: the caller).
async fn credentials(root: &AccountConfig) -> Result<Value, StepError> {
    let iam = root.iam();
    let password = match iam.get_login_profile().send().await {
        Ok(_) => true,
        Err(e) if error_code(&e) == Some("NoSuchEntity") => false,
        Err(e) => return Err(e).aws("iam:GetLoginProfile (root)"),
    };
    let keys = iam.list_access_keys().send().await.aws("iam:ListAccessKeys (root)")?;
    let certs = iam.list_signing_certificates().send().await.aws("iam:ListSigningCertificates (root)")?;
    let mfa = iam.list_mfa_devices().send().await.aws("iam:ListMFADevices (root)")?;
    Ok(json!({
        "password": password,
        "accessKeys": keys.access_key_metadata().iter().filter_map(|k| k.access_key_id()).collect::<Vec<_>>(),
        "signingCertificates": certs.certificates().iter().map(|c| c.certificate_id()).collect::<Vec<_>>(),
        "mfaDevices": mfa.mfa_devices().iter().map(|d| d.serial_number()).collect::<Vec<_>>(),
    }))
}

fn ids(found: &Value, key: &str) -> Vec<String> {
    found[key].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

/// The account's part: its root credentials deleted through a root session. Answers what the
/// account had (the snapshot's `root`). A plan reads nothing from the account until the
/// organization's features exist, and changes nothing.
pub(super) async fn remove_credentials(
    mgmt: &AccountConfig,
    account: &AccountId,
    changes: &mut Changes,
) -> Result<Value, StepError> {
    if !changes.live() && features(mgmt).await.unwrap_or_default().len() < FEATURES.len() {
        changes.push_in(
            account.clone(),
            mgmt.region.clone(),
            "iam:root/credentials",
            "delete",
            json!("not readable before centralized root access is enabled"),
            json!(null),
        );
        return Ok(Value::Null);
    }
    let root = root_session(mgmt, account, DELETE_TASK).await?;
    let found = credentials(&root).await?;
    let iam = root.iam();
    let live = changes.live();
    let mut change = |resource: String| {
        changes.push_in(account.clone(), mgmt.region.clone(), resource, "delete", json!(true), json!(null));
    };
    for key in ids(&found, "accessKeys") {
        if live {
            iam.delete_access_key().access_key_id(&key).send().await.aws("iam:DeleteAccessKey (root)")?;
        }
        change(format!("iam:root/accessKey/{key}"));
    }
    for cert in ids(&found, "signingCertificates") {
        if live {
            iam.delete_signing_certificate()
                .certificate_id(&cert)
                .send()
                .await
                .aws("iam:DeleteSigningCertificate (root)")?;
        }
        change(format!("iam:root/signingCertificate/{cert}"));
    }
    for serial in ids(&found, "mfaDevices") {
        if live {
            iam.deactivate_mfa_device().serial_number(&serial).send().await.aws("iam:DeactivateMFADevice (root)")?;
            // A virtual device (its serial is an ARN) is also deleted: deactivated, it is of no use.
            if serial.starts_with("arn:") {
                match iam.delete_virtual_mfa_device().serial_number(&serial).send().await {
                    Ok(_) => {}
                    Err(e) if error_code(&e) == Some("NoSuchEntity") => {}
                    Err(e) => return Err(e).aws("iam:DeleteVirtualMFADevice (root)"),
                }
            }
        }
        change(format!("iam:root/mfaDevice/{serial}"));
    }
    if found["password"] == true {
        if live {
            match iam.delete_login_profile().send().await {
                Ok(_) => {}
                // Deleted between the read and now: what this step wanted.
                Err(e) if error_code(&e) == Some("NoSuchEntity") => {}
                Err(e) => return Err(e).aws("iam:DeleteLoginProfile (root)"),
            }
        }
        change("iam:root/loginProfile".to_owned());
    }
    Ok(found)
}

/// Evidence: the organization's features (management account) and the account's root user
/// without long-lived credentials (IAM's account summary, read through the member role).
pub(super) async fn evidence_for(
    mgmt: &AccountConfig,
    target: &AccountConfig,
    organized: bool,
) -> Result<Vec<Evidence>, StepError> {
    let mut out = Vec::new();
    // A bulk run's organization step enabled the features once and stopped there if it could not.
    if !organized {
        let enabled = features(mgmt).await?;
        let missing: Vec<_> = FEATURES.iter().filter(|f| !enabled.iter().any(|e| e == *f)).collect();
        out.push(evidence(
            mgmt,
            &catalogue::CENTRALIZED_ROOT,
            "iam:organizationsFeatures",
            missing.is_empty(),
            if missing.is_empty() {
                format!("enabled: {}", enabled.join(", "))
            } else {
                format!("not enabled: {}", missing.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(", "))
            },
        ));
    }
    let summary = target.iam().get_account_summary().send().await.aws("iam:GetAccountSummary")?;
    let map = summary.summary_map().cloned().unwrap_or_default();
    let count = |k: SummaryKeyType| map.get(&k).copied().unwrap_or(0);
    let left: Vec<&str> = [
        (SummaryKeyType::AccountPasswordPresent, "a password"),
        (SummaryKeyType::AccountAccessKeysPresent, "access keys"),
        (SummaryKeyType::AccountSigningCertificatesPresent, "signing certificates"),
    ]
    .into_iter()
    .filter(|(k, _)| count(k.clone()) > 0)
    .map(|(_, what)| what)
    .collect();
    let mfa = count(SummaryKeyType::AccountMfaEnabled) > 0;
    out.push(evidence(
        target,
        &catalogue::ROOT_CREDENTIALS,
        format!("iam:root {}", target.account),
        left.is_empty(),
        if left.is_empty() {
            format!("root user has no password, access keys or signing certificates (MFA enabled: {mfa})")
        } else {
            format!("root user still has {}", left.join(", "))
        },
    ));
    Ok(out)
}

/// What rollback can give back: password recovery, where the account's root user had a password.
/// Deleted access keys, certificates and MFA devices are reported as not restorable.
pub(super) async fn compensate(
    mgmt: &AccountConfig,
    account: &AccountId,
    region: &Region,
    had: &Value,
    report: &mut Report,
) -> Result<(), StepError> {
    if had.is_null() {
        return Ok(());
    }
    if had["password"] == true {
        let root = root_session(mgmt, account, PASSWORD_TASK).await?;
        match root.iam().create_login_profile().send().await {
            Ok(_) => {}
            // Recovery was already allowed again (an earlier rollback of the run).
            Err(e) if error_code(&e) == Some("EntityAlreadyExists") => {}
            Err(e) => return Err(e).aws("iam:CreateLoginProfile (root)"),
        }
        report.restored.push(format!(
            "scps {region}: root user of {account} may recover its password again (the old password cannot be restored)"
        ));
    }
    let gone: Vec<String> =
        [("accessKeys", "access key"), ("signingCertificates", "signing certificate"), ("mfaDevices", "MFA device")]
            .into_iter()
            .flat_map(|(key, what)| ids(had, key).into_iter().map(move |id| format!("{what} {id}")))
            .collect();
    if !gone.is_empty() {
        report.not_restorable.push(format!(
            "scps {region}: root user of {account}: deleted {} cannot be restored; the account's owner makes new ones after recovering the root password",
            gone.join(", ")
        ));
    }
    Ok(())
}

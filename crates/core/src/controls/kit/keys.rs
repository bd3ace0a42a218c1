//! Customer managed keys: the logging key every control encrypts with, the alarm topic's key.

use assure_contract::{ErrorName, RunInput, StepError};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};

use super::Changes;

/// The logging bucket control's name, under which a bulk run's organization step records its facts.
const LOGGING_BUCKET: &str = "logging-bucket";

/// What the logging bucket's organization-wide part hands to the accounts' runs: the logging key,
/// which their steps hand to the services ([`logging_key_to_use`]). Here, not in the control,
/// because every control that hands the key to a service reads it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LoggingKeyFacts {
    #[serde(rename = "loggingKeyArn")]
    pub logging_key_arn: String,
}

/// The logging key's ARN for a step that hands it to a service: as the run's logging-bucket step
/// (or a bulk run's organization step) ensured the key, or else [`logging_key_arn`]. Not for
/// verify, which finds the key itself.
pub(crate) async fn logging_key_to_use(aws: &Aws, run: &RunInput) -> Result<String, StepError> {
    let organized = crate::controls::organized_facts::<LoggingKeyFacts>(run, LOGGING_BUCKET);
    if let Some(facts) = organized.filter(|_| !aws.pipeline().plan) {
        return Ok(facts.logging_key_arn);
    }
    if let Some(arn) = aws.logging_key_fact().await {
        return Ok(arn);
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

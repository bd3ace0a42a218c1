//! Deploys the pipeline into the current endpoint's account: the checkpoint bucket (which also holds
//! the deployment's settings), one queue per step with its dead-letter queue, the state machine's
//! role, and the state machine from `statemachines/onboarding.asl.json` with its placeholders
//! substituted. Re-running it updates in place.

use std::collections::BTreeMap;

use assure_contract::{OrgLayout, Region, StepError, StepName};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::aws::{error_code, Aws, AwsResultExt};
use crate::pipeline::infra::{Deployed, TemplateRole};
use crate::pipeline::resources::{
    checkpoint_bucket, placeholder, queue_name, state_machine_arn, BULK_ASL, BULK_STATES_ROLE, BULK_STATE_MACHINE,
    ONBOARDING_ASL, PIPELINE_KEY_ALIAS, STATES_ROLE, STATE_MACHINE,
};

/// The deployment's settings, stored as `deployment.json` in the checkpoint bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    pub org: OrgLayout,
    /// Regions a run covers unless it names others.
    pub regions: Vec<Region>,
    /// The region that owns global resources.
    pub home_region: Region,
    /// The role assumed in every account.
    pub role_name: String,
    /// Who the alarms notify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<assure_contract::Notify>,
}

/// Where the pipeline lives in an account.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub account: String,
    pub region: String,
    pub checkpoint_bucket: String,
    pub state_machine_arn: String,
    pub bulk_state_machine_arn: String,
    pub queues: BTreeMap<String, String>,
    pub settings: Settings,
    /// What this deploy changed (empty when everything was already in place).
    pub changes: Vec<String>,
}

/// Creates the state machine, or updates it when its definition or role differ.
async fn ensure_state_machine(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    name: &str,
    definition: &str,
    role_arn: &str,
    changes: &mut Vec<String>,
) -> Result<(), StepError> {
    match sfn.describe_state_machine().state_machine_arn(arn).send().await {
        Ok(current) => {
            let same_definition = serde_json::from_str::<serde_json::Value>(current.definition()).ok()
                == serde_json::from_str::<serde_json::Value>(definition).ok();
            if !same_definition || current.role_arn() != role_arn {
                sfn.update_state_machine()
                    .state_machine_arn(arn)
                    .definition(definition)
                    .role_arn(role_arn)
                    .send()
                    .await
                    .aws("states:UpdateStateMachine")?;
                changes.push(format!("updated state machine {name}"));
            }
        }
        Err(e) if error_code(&e) == Some("StateMachineDoesNotExist") => {
            sfn.create_state_machine()
                .name(name)
                .definition(definition)
                .role_arn(role_arn)
                .r#type(aws_sdk_sfn::types::StateMachineType::Standard)
                .send()
                .await
                .aws("states:CreateStateMachine")?;
            changes.push(format!("created state machine {name}"));
        }
        Err(e) => return Err(e).aws("states:DescribeStateMachine"),
    }
    Ok(())
}

/// Substitutes `${Name}` placeholders; fails naming any placeholder left without a value, and any
/// value no placeholder used.
pub fn substitute(template: &str, values: &BTreeMap<String, String>) -> Result<String, StepError> {
    let mut out = template.to_owned();
    for (k, v) in values {
        let p = format!("${{{k}}}");
        if !out.contains(&p) {
            return Err(StepError::internal(format!("the definition has no placeholder {p}")));
        }
        out = out.replace(&p, v);
    }
    if let Some(start) = out.find("${") {
        let end = out[start..].find('}').map_or(out.len(), |e| start + e + 1);
        return Err(StepError::internal(format!("placeholder {} has no value", &out[start..end])));
    }
    Ok(out)
}

/// Deploys or updates the pipeline.
pub async fn deploy(aws: &Aws, settings: &Settings) -> Result<Deployment, StepError> {
    let p = aws.pipeline();
    let account = p.account.to_string();
    let region = p.region.to_string();
    let mut changes = Vec::new();

    let bucket = checkpoint_bucket(&account, &region);
    let template_error = |e: String| StepError::internal(format!("the pipeline template: {e}"));
    // What the template's intrinsics resolve to here; the key's own policy names no key.
    let mut deployed = Deployed {
        account: &account,
        region: &region,
        member_role: &settings.role_name,
        checkpoint_bucket: &bucket,
        pipeline_key: "",
        security_account: settings.org.security.as_str(),
    };
    let key_policy = deployed.pipeline_key_policy().map_err(template_error)?;
    let key = ensure_pipeline_key(aws, &key_policy, &mut changes).await?;
    deployed.pipeline_key = &key;
    ensure_checkpoint_bucket(aws, &bucket, &key, &mut changes).await?;

    // Every role of the pipeline, from the same template a real deployment uses.
    for role in deployed.pipeline_roles().map_err(template_error)? {
        ensure_role(aws, &role, "assure: a role of the pipeline (infra/assure.template.json)", &mut changes).await?;
    }

    let sqs = p.sqs();
    let mut queues = BTreeMap::new();
    let mut values = BTreeMap::new();
    for step in StepName::ALL {
        let name = queue_name(step);
        let dead = crate::pipeline::infra::queue_timings(step, true);
        ensure_queue(&sqs, &format!("{name}-dlq"), None, &key, dead, &mut changes).await?;
        let dlq_arn = format!("arn:aws:sqs:{region}:{account}:{name}-dlq");
        let timings = crate::pipeline::infra::queue_timings(step, false);
        let url = ensure_queue(&sqs, &name, Some(&dlq_arn), &key, timings, &mut changes).await?;
        values.insert(placeholder(step), url.clone());
        queues.insert(step.as_str().to_owned(), url);
    }
    // The organization step's queue is the bulk state machine's.
    let organization_queue = values.remove(&placeholder(StepName::Organization)).unwrap_or_default();
    let definition = substitute(ONBOARDING_ASL, &values)?;
    let role_arn = |name: &str| format!("arn:aws:iam::{account}:role/{name}");
    let sm_arn = format!("arn:aws:states:{region}:{account}:stateMachine:{STATE_MACHINE}");
    let sfn = p.sfn();
    ensure_state_machine(&sfn, &sm_arn, STATE_MACHINE, &definition, &role_arn(STATES_ROLE), &mut changes).await?;
    let bulk_arn = format!("arn:aws:states:{region}:{account}:stateMachine:{BULK_STATE_MACHINE}");
    let bulk = substitute(
        BULK_ASL,
        &BTreeMap::from([
            ("OnboardingStateMachineArn".to_owned(), sm_arn.clone()),
            (placeholder(StepName::Organization), organization_queue),
        ]),
    )?;
    let bulk_role = role_arn(BULK_STATES_ROLE);
    ensure_state_machine(&sfn, &bulk_arn, BULK_STATE_MACHINE, &bulk, &bulk_role, &mut changes).await?;

    changes.extend(store_settings(aws, settings).await?);
    Ok(Deployment {
        account,
        region,
        checkpoint_bucket: bucket,
        state_machine_arn: sm_arn,
        bulk_state_machine_arn: bulk_arn,
        queues,
        settings: settings.clone(),
        changes,
    })
}

/// Records the settings of a pipeline deployed by other means (the CloudFormation stack): the
/// checkpoint bucket and the state machine must exist; only `deployment.json` is written.
pub async fn write_settings(aws: &Aws, settings: &Settings) -> Result<Vec<String>, StepError> {
    let p = aws.pipeline();
    let sm = state_machine_arn(aws);
    p.sfn().describe_state_machine().state_machine_arn(&sm).send().await.map_err(|e| match error_code(&e) {
        Some("StateMachineDoesNotExist") => StepError::invalid_input(format!(
            "--settings-only: the state machine {sm} does not exist; deploy the stack (infra/assure.template.json) first"
        )),
        _ => crate::aws::classify(&e, "states:DescribeStateMachine"),
    })?;
    store_settings(aws, settings).await
}

/// Writes `deployment.json` to the checkpoint bucket unless it already holds these settings.
async fn store_settings(aws: &Aws, settings: &Settings) -> Result<Vec<String>, StepError> {
    if load_settings(aws).await.ok().as_ref() == Some(settings) {
        return Ok(vec![]);
    }
    let p = aws.pipeline();
    let bucket = checkpoint_bucket(p.account.as_str(), p.region.as_str());
    let body = serde_json::to_vec_pretty(settings).map_err(|e| StepError::internal(e.to_string()))?;
    p.s3()
        .put_object()
        .bucket(&bucket)
        .key(SETTINGS_KEY)
        .content_type("application/json")
        .body(body.into())
        .send()
        .await
        .aws(format!("s3:PutObject {bucket}/deployment.json"))?;
    Ok(vec!["wrote deployment.json".to_owned()])
}

/// Reads the deployment's settings; a clear error when assure is not deployed here.
/// Where the settings are kept, in the checkpoint bucket.
pub const SETTINGS_KEY: &str = "deployment.json";

pub async fn load_settings(aws: &Aws) -> Result<Settings, StepError> {
    let p = aws.pipeline();
    let bucket = checkpoint_bucket(p.account.as_str(), p.region.as_str());
    let res = p.s3().get_object().bucket(&bucket).key(SETTINGS_KEY).send().await;
    let out = match res {
        Ok(o) => o,
        Err(e) if matches!(error_code(&e), Some("NoSuchBucket" | "NoSuchKey")) => {
            return Err(StepError::invalid_input(format!(
                "assure is not deployed in account {} region {} (no s3://{bucket}/deployment.json): run `assure deploy` first",
                p.account, p.region
            )))
        }
        Err(e) => return Err(e).aws(format!("s3:GetObject {bucket}/deployment.json")),
    };
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| StepError::new(assure_contract::ErrorName::Retryable, format!("reading deployment.json: {e}")))?
        .into_bytes();
    serde_json::from_slice(&bytes).map_err(|e| StepError::invalid_input(format!("s3://{bucket}/deployment.json: {e}")))
}

async fn ensure_checkpoint_bucket(
    aws: &Aws,
    bucket: &str,
    key: &str,
    changes: &mut Vec<String>,
) -> Result<(), StepError> {
    let p = aws.pipeline();
    let s3 = p.s3();
    let exists = match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => true,
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => false,
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
            return Err(crate::aws::bucket_not_owned(bucket, &p.account))
        }
        Err(e) => return Err(e).aws(format!("s3:HeadBucket {bucket}")),
    };
    if exists {
        let current = s3
            .get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
            .aws(format!("s3:GetEncryptionConfiguration {bucket}"))?;
        let by_default = current
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default());
        if by_default.and_then(|d| d.kms_master_key_id()) != Some(key) {
            put_checkpoint_encryption(&s3, bucket, key).await?;
            changes.push(format!("encrypted checkpoint bucket {bucket} with {PIPELINE_KEY_ALIAS}"));
        }
        return Ok(());
    }
    let mut create = s3.create_bucket().bucket(bucket);
    if p.region.as_str() != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(p.region.as_str()))
                .build(),
        );
    }
    create.send().await.aws(format!("s3:CreateBucket {bucket}"))?;
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .aws(format!("s3:PutPublicAccessBlock {bucket}"))?;
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .aws(format!("s3:PutBucketVersioning {bucket}"))?;
    put_checkpoint_encryption(&s3, bucket, key).await?;
    changes.push(format!("created checkpoint bucket {bucket}"));
    Ok(())
}

/// SSE-KMS with the pipeline key and an S3 Bucket Key, as the template's `CheckpointBucket`.
async fn put_checkpoint_encryption(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<(), StepError> {
    let enc = aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
        .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .kms_master_key_id(key)
        .build()
        .map_err(|e| StepError::internal(e.to_string()))?;
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
                .rules(
                    aws_sdk_s3::types::ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(enc)
                        .bucket_key_enabled(true)
                        .build(),
                )
                .build()
                .map_err(|e| StepError::internal(e.to_string()))?,
        )
        .send()
        .await
        .aws(format!("s3:PutBucketEncryption {bucket}"))?;
    Ok(())
}

async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    dlq_arn: Option<&str>,
    key: &str,
    (visibility, retention): (u64, u64),
    changes: &mut Vec<String>,
) -> Result<String, StepError> {
    // As the template's queues: SSE-KMS with the pipeline key, so whoever sends needs
    // kms:GenerateDataKey and whoever receives kms:Decrypt on it, and the template's visibility
    // timeout (at least the function's timeout, as Lambda requires of an event source's queue) and
    // retention. The worker holds each message it receives for its own window and extends it.
    let mut attrs = vec![
        (QueueAttributeName::KmsMasterKeyId, key.to_owned()),
        (QueueAttributeName::VisibilityTimeout, visibility.to_string()),
        (QueueAttributeName::MessageRetentionPeriod, retention.to_string()),
    ];
    if let Some(arn) = dlq_arn {
        attrs.push((
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": arn, "maxReceiveCount": 5}).to_string(),
        ));
    }
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => {
            let url = out.queue_url().unwrap_or_default().to_owned();
            let current = sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .aws(format!("sqs:GetQueueAttributes {name}"))?;
            let have = current.attributes().cloned().unwrap_or_default();
            let differs = attrs.iter().any(|(k, v)| {
                let got = have.get(k).map(String::as_str);
                match k {
                    QueueAttributeName::RedrivePolicy => {
                        got.and_then(|g| serde_json::from_str::<serde_json::Value>(g).ok())
                            != serde_json::from_str::<serde_json::Value>(v).ok()
                    }
                    _ => got != Some(v.as_str()),
                }
            });
            if differs {
                let mut set = sqs.set_queue_attributes().queue_url(&url);
                for (k, v) in &attrs {
                    set = set.attributes(k.clone(), v);
                }
                set.send().await.aws(format!("sqs:SetQueueAttributes {name}"))?;
                changes.push(format!("updated queue {name}"));
            }
            Ok(url)
        }
        Err(e) if error_code(&e).is_some_and(|c| c.contains("NonExistentQueue")) => {
            let mut create = sqs.create_queue().queue_name(name);
            for (k, v) in &attrs {
                create = create.attributes(k.clone(), v);
            }
            let out = create.send().await.aws(format!("sqs:CreateQueue {name}"))?;
            changes.push(format!("created queue {name}"));
            Ok(out.queue_url().unwrap_or_default().to_owned())
        }
        Err(e) => Err(e).aws(format!("sqs:GetQueueUrl {name}")),
    }
}

/// Finds the pipeline key by its alias, or creates it (with rotation and the alias); brings its
/// policy to the template's. Returns its ARN.
async fn ensure_pipeline_key(aws: &Aws, policy: &Value, changes: &mut Vec<String>) -> Result<String, StepError> {
    let kms = aws.pipeline().kms();
    match kms.describe_key().key_id(PIPELINE_KEY_ALIAS).send().await {
        Ok(out) => {
            let arn = out.key_metadata().map(|m| m.arn().unwrap_or_default().to_owned()).unwrap_or_default();
            let current = kms
                .get_key_policy()
                .key_id(&arn)
                .policy_name("default")
                .send()
                .await
                .aws(format!("kms:GetKeyPolicy {PIPELINE_KEY_ALIAS}"))?;
            if current.policy().and_then(crate::aws::decode_policy).as_ref() != Some(policy) {
                kms.put_key_policy()
                    .key_id(&arn)
                    .policy_name("default")
                    .policy(policy.to_string())
                    .send()
                    .await
                    .aws(format!("kms:PutKeyPolicy {PIPELINE_KEY_ALIAS}"))?;
                changes.push(format!("set the policy of key {PIPELINE_KEY_ALIAS}"));
            }
            Ok(arn)
        }
        Err(e) if error_code(&e) == Some("NotFoundException") => {
            let out = kms
                .create_key()
                .description("assure: encrypts the pipeline's queues, checkpoints and logs")
                .policy(policy.to_string())
                .send()
                .await
                .aws("kms:CreateKey")?;
            let arn = out.key_metadata().and_then(|m| m.arn()).unwrap_or_default().to_owned();
            kms.enable_key_rotation().key_id(&arn).send().await.aws("kms:EnableKeyRotation")?;
            kms.create_alias()
                .alias_name(PIPELINE_KEY_ALIAS)
                .target_key_id(&arn)
                .send()
                .await
                .aws(format!("kms:CreateAlias {PIPELINE_KEY_ALIAS}"))?;
            changes.push(format!("created key {PIPELINE_KEY_ALIAS}"));
            Ok(arn)
        }
        Err(e) => Err(e).aws(format!("kms:DescribeKey {PIPELINE_KEY_ALIAS}")),
    }
}

/// Creates a role or brings its trust policy and inline policies to `role`; returns its ARN.
async fn ensure_role(
    aws: &Aws,
    role: &TemplateRole,
    description: &str,
    changes: &mut Vec<String>,
) -> Result<String, StepError> {
    let iam = aws.pipeline().iam();
    let name = role.name.as_str();
    let arn = match iam.get_role().role_name(name).send().await {
        Ok(out) => {
            let current = out.role().and_then(|r| r.assume_role_policy_document()).and_then(crate::aws::decode_policy);
            if current.as_ref() != Some(&role.trust) {
                iam.update_assume_role_policy()
                    .role_name(name)
                    .policy_document(role.trust.to_string())
                    .send()
                    .await
                    .aws(format!("iam:UpdateAssumeRolePolicy {name}"))?;
                changes.push(format!("set the trust policy of role {name}"));
            }
            out.role().map(|r| r.arn().to_owned()).unwrap_or_default()
        }
        Err(e) if error_code(&e) == Some("NoSuchEntity") => {
            let out = iam
                .create_role()
                .role_name(name)
                .assume_role_policy_document(role.trust.to_string())
                .description(description)
                .send()
                .await
                .aws(format!("iam:CreateRole {name}"))?;
            changes.push(format!("created role {name}"));
            out.role().map(|r| r.arn().to_owned()).unwrap_or_default()
        }
        Err(e) => return Err(e).aws(format!("iam:GetRole {name}")),
    };
    for (policy_name, policy) in &role.policies {
        let current = match iam.get_role_policy().role_name(name).policy_name(policy_name).send().await {
            Ok(out) => crate::aws::decode_policy(out.policy_document()),
            Err(e) if error_code(&e) == Some("NoSuchEntity") => None,
            Err(e) => return Err(e).aws(format!("iam:GetRolePolicy {name}")),
        };
        if current.as_ref() != Some(policy) {
            iam.put_role_policy()
                .role_name(name)
                .policy_name(policy_name)
                .policy_document(policy.to_string())
                .send()
                .await
                .aws(format!("iam:PutRolePolicy {name}"))?;
            changes.push(format!("set the policy {policy_name} of role {name}"));
        }
    }
    Ok(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_camel_case() {
        assert_eq!(placeholder(StepName::LoggingBucket), "LoggingBucketQueueUrl");
        assert_eq!(placeholder(StepName::Preflight), "PreflightQueueUrl");
    }

    #[test]
    fn the_definition_uses_exactly_the_step_placeholders() {
        let values: BTreeMap<_, _> = StepName::ALL
            .iter()
            .filter(|s| **s != StepName::Organization)
            .map(|s| (placeholder(*s), format!("https://q/{s}")))
            .collect();
        let def = substitute(ONBOARDING_ASL, &values).unwrap();
        let v: serde_json::Value = serde_json::from_str(&def).unwrap();
        assert!(v["States"].is_object());
        let mut missing = values.clone();
        missing.remove("VerifyQueueUrl");
        let err = substitute(ONBOARDING_ASL, &missing).unwrap_err();
        assert!(err.message.contains("${VerifyQueueUrl}"), "{}", err.message);
        let mut extra = values;
        extra.insert("Nope".into(), "x".into());
        assert!(substitute(ONBOARDING_ASL, &extra).unwrap_err().message.contains("${Nope}"));
    }
}

//! Deploys the pipeline the one way it is deployed, on AWS and on the local cloud alike: through
//! CloudFormation, from `infra/assure.template.json` (the SAM template CloudFormation's
//! `AWS::Serverless-2016-10-31` transform expands).
//!
//! 1. The artifacts stack (`infra/artifacts.template.json`): the bucket the rest is uploaded to.
//! 2. The upload, as `aws cloudformation package` does it: the step package (one zip every
//!    function runs, configured by `ASSURE_STEP`), the state machines' definitions, and the template
//!    with its `CodeUri` and `DefinitionUri` pointing at them (too large to pass inline: 51,200 bytes).
//!    Objects are named by their digest, so an unchanged package is neither uploaded nor redeployed.
//! 3. The pipeline stack, created or updated, with the capabilities the transform and the named roles
//!    need; its events are reported as they come, and a failure names the resource and the service's
//!    reason.
//! 4. The deployment's settings (`deployment.json` in the checkpoint bucket the stack made).
//!
//! Nothing here creates a resource of the pipeline or grants it anything: the template does.

use std::collections::BTreeMap;

use std::path::PathBuf;
use std::time::Duration;

use assure_contract::{OrgLayout, Region, StepError, StepName, STEP_BINARY};
use aws_sdk_cloudformation::types::Capability;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::aws::{error_code, Aws, AwsResultExt};
use crate::pipeline::resources::{
    checkpoint_bucket, placeholder, state_machine_arn, BULK_ASL, JOIN_ASL, ONBOARDING_ASL, WATCH_ASL,
};

mod stacks;
use stacks::*;

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
    /// The scheduled verify's schedule and drift policy (the configuration file's `fleet`).
    #[serde(default)]
    pub fleet: assure_contract::Fleet,
}

/// Where the pipeline lives in an account.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub account: String,
    pub region: String,
    pub stack_id: String,
    pub checkpoint_bucket: String,
    pub state_machine_arn: String,
    pub bulk_state_machine_arn: String,
    pub queues: BTreeMap<String, String>,
    pub settings: Settings,
    /// What this deploy changed (empty when everything was already in place).
    pub changes: Vec<String>,
}

/// The stack the pipeline is deployed as.
pub const PIPELINE_STACK: &str = "assure";

/// The stack of the bucket the artifacts are uploaded to.
pub const ARTIFACTS_STACK: &str = "assure-artifacts";

/// The step package: what every function's code is.
#[derive(Clone, Debug)]
pub enum Package {
    /// A Lambda deployment package: a zip with `bootstrap` at its root, or a directory holding
    /// `bootstrap` (what `cargo xtask package` writes: `target/lambda/assure-step/`).
    Built(PathBuf),
    /// For the local cloud, whose worker plays Lambda on this machine: a package whose `bootstrap`
    /// runs this step binary.
    Local(PathBuf),
}

/// How to deploy.
#[derive(Clone, Debug)]
pub struct Options {
    pub package: Package,
    /// Start an onboarding when an account joins the organization (the template's AutoOnboard).
    pub auto_onboard: bool,
}

/// Deploys or updates the pipeline; `progress` hears each stack event as it happens.
pub async fn deploy(
    aws: &Aws,
    settings: &Settings,
    options: &Options,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Deployment, StepError> {
    let p = aws.pipeline();
    let account = p.account.to_string();
    let region = p.region.to_string();
    let cf = p.cloudformation();
    let poll = if aws.endpoint_url().is_some() { Duration::from_millis(200) } else { Duration::from_secs(3) };
    let mut changes = Vec::new();

    // Buckets of the stacks' names that another account made first would fail the stacks, after a
    // rollback, with S3's "already exists": refused before anything starts, naming the bucket.
    let artifacts_bucket = format!("assure-artifacts-{account}-{region}");
    let checkpoints = checkpoint_bucket(&account, &region);
    for bucket in [&artifacts_bucket, &checkpoints] {
        match p.s3().head_bucket().bucket(bucket).send().await {
            Ok(_) => {}
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {}
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
                return Err(crate::aws::bucket_not_owned(bucket, &p.account))
            }
            Err(e) => return Err(e).aws(format!("s3:ListBucket {bucket}")),
        }
    }
    let artifacts_body = serde_json::to_string(&crate::pipeline::infra::artifacts_template())
        .map_err(|e| StepError::internal(e.to_string()))?;
    let artifacts =
        apply_stack(&cf, ARTIFACTS_STACK, Template::Body(&artifacts_body), &[], &[], poll, progress, &mut changes)
            .await?;
    let bucket = artifacts.output(ARTIFACTS_STACK, "BucketName")?;

    let s3 = p.s3();
    let zip = package_zip(&options.package)?;
    let code_key = format!("{STEP_BINARY}-{}.zip", digest(&zip));
    upload(&s3, &bucket, &code_key, zip, &mut changes).await?;
    let mut template = crate::pipeline::infra::pipeline_template();
    let resources =
        template["Resources"].as_object_mut().ok_or_else(|| StepError::internal("template has no Resources"))?;
    for (id, resource) in resources.iter_mut() {
        let props = &mut resource["Properties"];
        if props.get("CodeUri").is_some() {
            props["CodeUri"] = json!(format!("s3://{bucket}/{code_key}"));
        }
        if let Some(local) = props.get("DefinitionUri").and_then(Value::as_str) {
            let text = match local.rsplit('/').next() {
                Some("onboarding.asl.json") => ONBOARDING_ASL,
                Some("bulk.asl.json") => BULK_ASL,
                Some("join.asl.json") => JOIN_ASL,
                Some("watch.asl.json") => WATCH_ASL,
                _ => return Err(StepError::internal(format!("{id}: unknown definition {local}"))),
            };
            let key = format!("definitions/{id}-{}.json", digest(text.as_bytes()));
            upload(&s3, &bucket, &key, text.as_bytes().to_vec(), &mut changes).await?;
            props["DefinitionUri"] = json!({"Bucket": bucket, "Key": key});
        }
    }
    let text = serde_json::to_vec(&template).map_err(|e| StepError::internal(e.to_string()))?;
    let template_key = format!("templates/assure-{}.json", digest(&text));
    upload(&s3, &bucket, &template_key, text, &mut changes).await?;
    let url = format!("https://{bucket}.s3.{region}.amazonaws.com/{template_key}");

    let regions = serde_json::to_string(&settings.regions).map_err(|e| StepError::internal(e.to_string()))?;
    let parameters = [
        ("ManagementAccount", settings.org.management.to_string()),
        ("LoggingAccount", settings.org.logging.to_string()),
        ("SecurityAccount", settings.org.security.to_string()),
        ("MemberRoleName", settings.role_name.clone()),
        ("RegionsJson", regions),
        ("AutoOnboard", options.auto_onboard.to_string()),
        ("VerifySchedule", settings.fleet.schedule.clone()),
        // Drift is told to whom the alarms notify (the endpoint itself: a NoEcho parameter).
        ("DriftProtocol", settings.notify.as_ref().map_or("email", |n| n.protocol.as_str()).to_owned()),
        ("DriftEndpoint", settings.notify.as_ref().map(|n| n.endpoint.clone()).unwrap_or_default()),
    ];
    let stack = apply_stack(
        &cf,
        PIPELINE_STACK,
        Template::Url(&url),
        &parameters,
        &[Capability::CapabilityIam, Capability::CapabilityNamedIam, Capability::CapabilityAutoExpand],
        poll,
        progress,
        &mut changes,
    )
    .await?;
    let output = |key: &str| stack.output(PIPELINE_STACK, key);
    let checkpoint = output("CheckpointBucketName")?;
    if checkpoint != checkpoint_bucket(&account, &region) {
        return Err(StepError::internal(format!("stack {PIPELINE_STACK}'s checkpoint bucket is {checkpoint}")));
    }
    let mut queues = BTreeMap::new();
    for step in StepName::ALL {
        queues.insert(step.as_str().to_owned(), output(&placeholder(step))?);
    }
    let state_machine_arn = output("StateMachineArn")?;
    let bulk_state_machine_arn = output("BulkStateMachineArn")?;
    changes.extend(store_settings(aws, settings).await?);
    Ok(Deployment {
        account,
        region,
        stack_id: stack.id,
        checkpoint_bucket: checkpoint,
        state_machine_arn,
        bulk_state_machine_arn,
        queues,
        settings: settings.clone(),
        changes,
    })
}

/// The caller's organization's management account (any member may describe its organization).
pub async fn management_account(aws: &Aws) -> Result<assure_contract::AccountId, StepError> {
    let org = aws
        .pipeline()
        .organizations()
        .describe_organization()
        .send()
        .await
        .aws("organizations:DescribeOrganization")?;
    org.organization()
        .and_then(|o| o.master_account_id())
        .ok_or_else(|| StepError::internal("organizations:DescribeOrganization returned no management account"))?
        .parse()
}

/// The management account's bootstrap stack (`infra/management.template.json`).
pub const MANAGEMENT_STACK: &str = "assure-management";

/// The bootstrap stack as deployed.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrapped {
    pub management_account: String,
    pub pipeline_account: String,
    pub stack_id: String,
    pub management_role_arn: String,
    /// What this bootstrap changed (empty when everything was already in place).
    pub changes: Vec<String>,
}

/// Deploys or updates the management account's bootstrap stack for the pipeline in `pipeline`,
/// with the management account's own credentials, in us-east-1 (where EventBridge receives
/// Organizations' events). Refuses any other caller than the management account, and a pipeline
/// account outside the organization or not active in it.
pub async fn bootstrap(
    aws: &Aws,
    pipeline: &assure_contract::AccountId,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Bootstrapped, StepError> {
    let region: Region = "us-east-1".parse()?;
    let p = aws.pipeline().in_region(&region);
    let orgs = p.organizations();
    let org = orgs.describe_organization().send().await.aws("organizations:DescribeOrganization")?;
    let management = org.organization().and_then(|o| o.master_account_id()).unwrap_or_default().to_owned();
    if management != p.account.as_str() {
        return Err(StepError::invalid_input(format!(
            "assure bootstrap runs with the management account's credentials ({management}), not account {}'s",
            p.account
        )));
    }
    if pipeline.as_str() == management {
        return Err(StepError::invalid_input(format!(
            "--pipeline-account: {pipeline} is the management account; the pipeline runs in another account (the security account, say), which SCPs bind"
        )));
    }
    let found = orgs.describe_account().account_id(pipeline.as_str()).send().await;
    let status = match found {
        Ok(out) => out.account().and_then(|a| a.status()).map(|s| s.as_str().to_owned()).unwrap_or_default(),
        Err(e) if error_code(&e) == Some("AccountNotFoundException") => {
            return Err(StepError::invalid_input(format!(
                "--pipeline-account: {pipeline} is not an account of organization {}",
                org.organization().and_then(|o| o.id()).unwrap_or("?")
            )))
        }
        Err(e) => return Err(e).aws("organizations:DescribeAccount"),
    };
    if status != "ACTIVE" {
        return Err(StepError::invalid_input(format!("--pipeline-account: {pipeline} is {status}, not ACTIVE")));
    }
    let body = serde_json::to_string(&crate::pipeline::infra::management_template())
        .map_err(|e| StepError::internal(e.to_string()))?;
    let poll = if aws.endpoint_url().is_some() { Duration::from_millis(200) } else { Duration::from_secs(3) };
    let mut changes = Vec::new();
    let stack = apply_stack(
        &p.cloudformation(),
        MANAGEMENT_STACK,
        Template::Body(&body),
        &[("PipelineAccount", pipeline.to_string())],
        &[Capability::CapabilityNamedIam],
        poll,
        progress,
        &mut changes,
    )
    .await?;
    let management_role_arn = stack.output(MANAGEMENT_STACK, "ManagementRoleArn")?;
    Ok(Bootstrapped {
        management_account: management,
        pipeline_account: pipeline.to_string(),
        stack_id: stack.id,
        management_role_arn,
        changes,
    })
}

/// The first 16 hex digits of the SHA-256 of `bytes`: names an uploaded artifact by its content.
fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))[..16].to_owned()
}

/// Uploads `body` as `key` unless an object of that (content-derived) name is there already.
async fn upload(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    changes: &mut Vec<String>,
) -> Result<(), StepError> {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => return Ok(()),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {}
        Err(e) => return Err(e).aws(format!("s3:GetObject {bucket}/{key}")),
    }
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .aws(format!("s3:PutObject {bucket}/{key}"))?;
    changes.push(format!("uploaded s3://{bucket}/{key}"));
    Ok(())
}

/// The step package as a zip: a built one as it is (a directory is zipped), or for the local cloud
/// a `bootstrap` that runs the step binary. The local one names the binary's size and time, so a
/// rebuilt binary is a new package, which updates the functions.
pub fn package_zip(package: &Package) -> Result<Vec<u8>, StepError> {
    let fail = |what: &dyn std::fmt::Display, e: &dyn std::fmt::Display| {
        StepError::invalid_input(format!("--package {what}: {e}"))
    };
    let bootstrap: Vec<u8> = match package {
        Package::Built(path) if path.is_file() => return std::fs::read(path).map_err(|e| fail(&path.display(), &e)),
        Package::Built(dir) => {
            let file = dir.join("bootstrap");
            std::fs::read(&file).map_err(|e| fail(&file.display(), &e))?
        }
        Package::Local(bin) => {
            let meta = std::fs::metadata(bin).map_err(|e| {
                fail(&bin.display(), &format!("{e} (build the step binary: cargo build --bin {STEP_BINARY})"))
            })?;
            let built = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            let quoted = bin.display().to_string().replace('\'', r"'\''");
            format!(
                "#!/bin/sh\n# the local cloud's package: {} bytes, built {} s after the epoch\nexec '{quoted}' \"$@\"\n",
                meta.len(),
                built.map(|d| d.as_secs()).unwrap_or_default()
            )
            .into_bytes()
        }
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755)
        // A fixed time: the same bootstrap is the same zip, so its digest names it.
        .last_modified_time(zip::DateTime::default());
    zip.start_file("bootstrap", options).map_err(|e| StepError::internal(e.to_string()))?;
    std::io::Write::write_all(&mut zip, &bootstrap).map_err(|e| StepError::internal(e.to_string()))?;
    zip.finish().map_err(|e| StepError::internal(e.to_string()))?;
    Ok(out.into_inner())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_camel_case() {
        assert_eq!(placeholder(StepName::LoggingBucket), "LoggingBucketQueueUrl");
        assert_eq!(placeholder(StepName::Preflight), "PreflightQueueUrl");
    }

    /// Every `${Name}` of a definition has a substitution in the template, and every substitution a
    /// placeholder: CloudFormation would leave an unmatched one in the definition as text.
    #[test]
    fn each_definition_and_its_substitutions_match() {
        let template = crate::pipeline::infra::pipeline_template();
        for (id, asl) in [
            ("StateMachine", ONBOARDING_ASL),
            ("BulkStateMachine", BULK_ASL),
            ("JoinStateMachine", JOIN_ASL),
            ("WatchStateMachine", WATCH_ASL),
        ] {
            let props = &template["Resources"][id]["Properties"];
            let given: std::collections::BTreeSet<String> =
                props["DefinitionSubstitutions"].as_object().unwrap().keys().cloned().collect();
            let used: std::collections::BTreeSet<String> = asl
                .split("${")
                .skip(1)
                .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
                .collect();
            assert_eq!(given, used, "{id}");
            assert!(!used.is_empty(), "{id}");
        }
    }

    #[test]
    fn the_local_package_runs_the_step_binary_and_names_its_build() {
        let bin = std::env::current_exe().unwrap();
        let zip = package_zip(&Package::Local(bin.clone())).unwrap();
        assert_eq!(package_zip(&Package::Local(bin.clone())).unwrap(), zip, "the same build is the same package");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let mut file = archive.by_name("bootstrap").unwrap();
        assert_eq!(file.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{text}");
        assert!(text.contains(&format!("exec '{}' \"$@\"", bin.display())), "{text}");
        let missing = package_zip(&Package::Local("/nonexistent/assure-step".into())).unwrap_err();
        assert_eq!(missing.name, assure_contract::ErrorName::InvalidInput);
        assert!(missing.message.contains("/nonexistent/assure-step"), "{}", missing.message);
    }
}

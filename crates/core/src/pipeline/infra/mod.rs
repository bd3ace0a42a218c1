//! The CloudFormation (SAM) templates for a real organization, generated from the same names the
//! code uses (steps, queues, roles, the member role, the resources assure owns), so a local and a
//! real deployment cannot drift apart. `cargo xtask codegen` writes them under `infra/`; a test
//! fails when the committed files differ.

use assure_contract::StepName;
use serde_json::{json, Value};

use crate::controls::baseline;
use crate::controls::kit::permissions::{joined, sub, Grant};
use crate::pipeline::resources::placeholder;

mod deployed;
mod drift;
mod management;
mod member;
mod pipeline;

pub use deployed::*;
pub use management::*;
pub use member::*;
pub use pipeline::*;

/// The checkpoint bucket's name, for `Fn::Sub` (`resources::checkpoint_bucket` in the code).
const CHECKPOINTS: &str = "assure-checkpoints-${AWS::AccountId}-${AWS::Region}";

/// The policy of the bucket `bucket` (a logical id) that refuses every request not made over TLS.
fn tls_only(bucket: &str) -> Value {
    json!({
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": reference(bucket),
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [getatt(bucket, "Arn"), sub(&format!("${{{bucket}.Arn}}/*"))],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
        }
    })
}

/// A role Step Functions runs a state machine as: trusted by Step Functions for this account's
/// state machines, with `statements`, and what Step Functions itself does as the role: deliver the
/// state machine's logs to its log group, send X-Ray traces.
fn states_role(name: &str, policy: &str, statements: Value) -> Value {
    let mut statements = match statements {
        Value::Array(list) => list,
        one => vec![one],
    };
    statements.push(
        json!({"Effect": "Allow", "Action": ["logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups"], "Resource": "*"}),
    );
    statements.push(
        json!({"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": "*"}),
    );
    json!({
        "Type": "AWS::IAM::Role",
        "Metadata": skip(&[("CKV_AWS_111", "CloudWatch Logs delivery for Step Functions (logs:CreateLogDelivery and friends) supports only Resource \"*\"")]),
        "Properties": {
            "RoleName": name,
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": reference("AWS::AccountId")}}}]},
            "Policies": [{"PolicyName": policy, "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]
        }
    })
}

/// `Foo-bar` → `FooBar`, for logical ids.
fn logical(step: StepName) -> String {
    placeholder(step).trim_end_matches("QueueUrl").to_owned()
}

fn getatt(res: &str, attr: &str) -> Value {
    json!({"Fn::GetAtt": [res, attr]})
}

fn reference(name: &str) -> Value {
    json!({"Ref": name})
}

/// Checkov suppressions, each with its reason.
fn skip(checks: &[(&str, &str)]) -> Value {
    json!({"checkov": {"skip": checks.iter().map(|(id, why)| json!({"id": id, "comment": why})).collect::<Vec<_>>()}})
}

/// `(resource, actions)` pairs as policy statements, with unique Sids `{prefix}1`, `{prefix}2`…
fn statements_of(prefix: &str, pairs: Vec<Grant>) -> Vec<Value> {
    pairs
        .into_iter()
        .enumerate()
        .map(|(i, (resource, actions))| {
            // A statement with a condition comes as {"Resource": …, "Condition": …}.
            let mut statement = json!({"Sid": format!("{prefix}{}", i + 1), "Effect": "Allow", "Action": actions});
            match resource {
                Value::Object(fields) if fields.contains_key("Resource") => {
                    statement.as_object_mut().into_iter().for_each(|s| s.extend(fields.clone()))
                }
                resource => statement["Resource"] = resource,
            }
            statement
        })
        .collect()
}

/// The stack `assure deploy` makes first: the bucket the pipeline's artifacts (the step package, the
/// state machines' definitions, the pipeline template, too large to pass inline) are uploaded to
/// before the pipeline stack is made or updated, as `aws cloudformation package` and `sam deploy`'s
/// managed bucket do. It holds no data of a run.
pub fn artifacts_template() -> Value {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "assure: the bucket assure deploy uploads the pipeline's package, definitions and template to",
        "Resources": {
            "ArtifactsBucket": {
                "Type": "AWS::S3::Bucket",
                "Metadata": skip(&[
                    ("CKV_AWS_18", "holds build artifacts written by the deployer; CloudTrail records who wrote them"),
                    ("CKV_AWS_145", "SSE-S3: Lambda and CloudFormation read these objects as the deployer, who needs no key grant; nothing secret is uploaded")]),
                "Properties": {
                    "BucketName": sub("assure-artifacts-${AWS::AccountId}-${AWS::Region}"),
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "BucketEncryption": {"ServerSideEncryptionConfiguration": [{
                        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
                    "PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true},
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                    "LifecycleConfiguration": {"Rules": [{"Id": "OldArtifacts", "Status": "Enabled",
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]}
                }
            },
            "ArtifactsBucketPolicy": tls_only("ArtifactsBucket")
        },
        "Outputs": {"BucketName": {"Value": reference("ArtifactsBucket")}}
    })
}

/// The generated files: (path relative to the repository root, contents).
pub fn generated_files() -> Vec<(&'static str, String)> {
    let pretty = |v: Value| serde_json::to_string_pretty(&v).expect("JSON") + "\n";
    vec![
        ("infra/assure.template.json", pretty(pipeline_template())),
        ("infra/member-role.template.json", pretty(member_role_template())),
        ("infra/management.template.json", pretty(management_template())),
        ("infra/artifacts.template.json", pretty(artifacts_template())),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// IAM limits a role's inline policies to 10,240 characters in all, white space not counted
    /// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html): a role over it
    /// fails its stack (the member role's, in every account of the StackSet). Each role is resolved
    /// with every value as long as it can be: the longest partition and Region, 12-digit accounts,
    /// and 128 characters for what another resource answers (an ARN, a queue's URL) or a parameter.
    #[test]
    fn every_roles_inline_policies_fit_iams_size_limit() {
        let refs = |name: &str| {
            Some(match name {
                "AWS::Partition" => "aws-us-gov".to_owned(),
                "AWS::Region" => "ap-southeast-4".to_owned(),
                "AWS::AccountId" | "PipelineAccount" | "ManagementAccount" | "LoggingAccount" => {
                    "123456789012".to_owned()
                }
                _ => "x".repeat(128),
            })
        };
        let atts = |_: &str| Some("x".repeat(128));
        let templates = [
            ("pipeline", pipeline_template()),
            ("member role", member_role_template()),
            ("management", management_template()),
        ];
        let mut largest = (0, String::new());
        for (name, t) in templates {
            for (id, r) in t["Resources"].as_object().unwrap() {
                if r["Type"] != "AWS::IAM::Role" {
                    continue;
                }
                let size: usize = r["Properties"]["Policies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let doc: Value = deployed::resolve_with(&p["PolicyDocument"], &refs, &atts).unwrap();
                        doc.to_string().chars().filter(|c| !c.is_whitespace()).count()
                    })
                    .sum();
                assert!(size <= 10_240, "{name} {id}: {size} characters of inline policy, over IAM's 10,240");
                if size > largest.0 {
                    largest = (size, format!("{name} {id}"));
                }
            }
        }
        eprintln!("largest inline policy: {} ({} characters)", largest.1, largest.0);
        assert!(largest.0 > 5_000, "the sizes are counted: {largest:?}");
    }
}

//! Least privilege, proven both ways, from what the end-to-end suite did.
//!
//! Every local cloud the suite starts logs each authorization decision (`authz.jsonl`: principal,
//! IAM action, resource, allowed); the harness copies the log out when the cloud stops. Here every
//! (role, action) a role of the generated templates was asked for is set against the actions its
//! policies grant:
//! - used but not granted: the local cloud refused the role an action its template does not grant
//!   (an action allowed by a resource policy alone, such as a KMS key policy naming the role, is
//!   granted by that policy, which assure generates too);
//! - granted but never used: no test needed it. Remove it from the generator, or add the test.
//!
//! `AWS_SIDE` lists what AWS itself does with a role that the local cloud does not play (Lambda
//! writing a function's logs, Step Functions' managed rules), each with its reason; an entry the
//! suite does use is stale and fails too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

/// (role name pattern, action, why AWS uses it and the local cloud does not).
const AWS_SIDE: &[(&str, &str, &str)] = &[
    ("assure-step-*", "logs:CreateLogStream", "Lambda writes the function's logs as its execution role; the worker logs to its own file"),
    ("assure-step-*", "logs:PutLogEvents", "Lambda writes the function's logs as its execution role; the worker logs to its own file"),
    ("assure-step-*", "sqs:GetQueueAttributes", "Lambda's event source mapping reads the queue's attributes as the function's role when it is created and while it polls; the worker only receives and deletes"),
    ("assure-states", "logs:CreateLogDelivery", "Step Functions sets up log delivery to the state machine's log group as its role; the local cloud has no vended logs"),
    ("assure-states", "logs:GetLogDelivery", "Step Functions' log delivery, as above"),
    ("assure-states", "logs:UpdateLogDelivery", "Step Functions' log delivery, as above"),
    ("assure-states", "logs:DeleteLogDelivery", "Step Functions' log delivery, as above"),
    ("assure-states", "logs:ListLogDeliveries", "Step Functions' log delivery, as above"),
    ("assure-states", "logs:PutResourcePolicy", "Step Functions' log delivery writes the log group's resource policy, as above"),
    ("assure-states", "logs:DescribeResourcePolicies", "Step Functions' log delivery, as above"),
    ("assure-states", "logs:DescribeLogGroups", "Step Functions' log delivery, as above"),
    ("assure-states", "xray:PutTraceSegments", "Step Functions sends X-Ray traces as the state machine's role (TracingConfiguration); the local cloud has no X-Ray"),
    ("assure-states", "xray:PutTelemetryRecords", "X-Ray tracing, as above"),
    ("assure-*-states", "logs:CreateLogDelivery", "Step Functions' log delivery, as for assure-states"),
    ("assure-*-states", "logs:GetLogDelivery", "Step Functions' log delivery, as for assure-states"),
    ("assure-*-states", "logs:UpdateLogDelivery", "Step Functions' log delivery, as for assure-states"),
    ("assure-*-states", "logs:DeleteLogDelivery", "Step Functions' log delivery, as for assure-states"),
    ("assure-*-states", "logs:ListLogDeliveries", "Step Functions' log delivery, as for assure-states"),
    ("assure-*-states", "logs:PutResourcePolicy", "Step Functions' log delivery, as for assure-states"),
    ("assure-*-states", "logs:DescribeResourcePolicies", "Step Functions' log delivery, as for assure-states"),
    ("assure-*-states", "logs:DescribeLogGroups", "Step Functions' log delivery, as for assure-states"),
    ("assure-*-states", "xray:PutTraceSegments", "X-Ray tracing, as for assure-states"),
    ("assure-*-states", "xray:PutTelemetryRecords", "X-Ray tracing, as for assure-states"),
    ("assure-bulk-states", "events:PutTargets", "the startExecution.sync integration watches child executions through the managed rule StepFunctionsGetEventsForStepFunctionsExecutionRule; moto's interpreter polls instead"),
    ("assure-bulk-states", "events:PutRule", "the managed rule of startExecution.sync, as above"),
    ("assure-bulk-states", "events:DescribeRule", "the managed rule of startExecution.sync, as above"),
    ("assure-bulk-states", "states:StopExecution", "Step Functions stops the child executions of a stopped bulk run as its role; no test stops a bulk run midway"),
];

/// Every role of the generated templates and the actions its Allow statements name.
fn granted() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for template in [
        assure_core::pipeline::infra::pipeline_template(),
        assure_core::pipeline::infra::member_role_template(),
        assure_core::pipeline::infra::management_template(),
    ] {
        let default_role = template["Parameters"]["RoleName"]["Default"].as_str().unwrap_or_default().to_owned();
        for res in template["Resources"].as_object().into_iter().flat_map(|m| m.values()) {
            if res["Type"] != "AWS::IAM::Role" {
                continue;
            }
            let props = &res["Properties"];
            let name = match &props["RoleName"] {
                Value::String(s) => s.clone(),
                _ => default_role.clone(),
            };
            let actions = out.entry(name).or_default();
            for policy in props["Policies"].as_array().into_iter().flatten() {
                for st in policy["PolicyDocument"]["Statement"].as_array().into_iter().flatten() {
                    if st["Effect"] != "Allow" {
                        continue;
                    }
                    match &st["Action"] {
                        Value::String(a) => {
                            actions.insert(a.clone());
                        }
                        Value::Array(list) => actions.extend(list.iter().filter_map(|a| a.as_str().map(str::to_owned))),
                        _ => {}
                    }
                }
            }
        }
    }
    out
}

/// IAM's matching of an action against a pattern: case-insensitive, `*` and `?` wildcards.
fn matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], a) || (!a.is_empty() && go(p, &a[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => go(&p[1..], &a[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
}

/// The role a principal acts as: a role's ARN (`arn:aws:iam::A:role/PATH/ROLE`, as the local cloud
/// logs a session) or an assumed-role session's (`arn:aws:sts::A:assumed-role/ROLE/SESSION`).
fn role_of(principal: &str) -> Option<&str> {
    if let Some((_, rest)) = principal.split_once(":assumed-role/") {
        return rest.split('/').next();
    }
    principal.split_once(":role/").and_then(|(_, rest)| rest.rsplit('/').next())
}

/// Reads every decision log under `dir` and fails unless used and granted agree.
pub(crate) fn check(dir: &Path) -> anyhow::Result<()> {
    let granted = granted();
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut refused: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (mut files, mut decisions) = (0usize, 0usize);
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines() {
            let Ok(d) = serde_json::from_str::<Value>(line) else { continue };
            decisions += 1;
            let (Some(principal), Some(action)) = (d["principal"].as_str(), d["action"].as_str()) else { continue };
            if let Some(role) = role_of(principal).filter(|r| granted.contains_key(*r)) {
                used.entry(role.to_owned()).or_default().insert(action.to_owned());
                if d["allowed"] == false {
                    refused.entry(role.to_owned()).or_default().insert(action.to_owned());
                }
            }
        }
    }
    if files == 0 {
        bail!("no authorization log under {}: did the suite run with the local cloud's IAM enforced?", dir.display());
    }
    let aws_side = |role: &str, action: &str| AWS_SIDE.iter().any(|(r, a, _)| matches(r, role) && a == &action);
    let mut not_granted = Vec::new();
    let mut unused = Vec::new();
    let mut stale = Vec::new();
    for (role, actions) in &granted {
        let none = BTreeSet::new();
        let role_used = used.get(role).unwrap_or(&none);
        for action in refused.get(role).unwrap_or(&none) {
            if !actions.iter().any(|p| matches(p, action)) {
                not_granted.push(format!("{role}: {action}"));
            }
        }
        for pattern in actions {
            let is_used = role_used.iter().any(|a| matches(pattern, a));
            match (is_used, aws_side(role, pattern)) {
                (false, false) => unused.push(format!("{role}: {pattern}")),
                (true, true) => stale.push(format!("{role}: {pattern}")),
                _ => {}
            }
        }
    }
    let pairs: usize = granted.values().map(BTreeSet::len).sum();
    let used_pairs: usize = used.values().map(BTreeSet::len).sum();
    let side = granted.iter().map(|(r, acts)| acts.iter().filter(|a| aws_side(r, a)).count()).sum::<usize>();
    println!(
        "least privilege: {decisions} decisions from {files} local clouds; {} roles grant {pairs} actions; \
         {used_pairs} (role, action) used; {side} used by AWS alone; {} used but not granted; {} granted but unused",
        granted.len(),
        not_granted.len(),
        unused.len()
    );
    let mut problems = String::new();
    for (title, list) in [
        ("used but not granted (add to the generator, infra.rs)", &not_granted),
        ("granted but never used (remove it, or add the test that uses it)", &unused),
        ("listed as used by AWS alone, yet used locally (remove from AWS_SIDE)", &stale),
    ] {
        if !list.is_empty() {
            problems.push_str(&format!("\n{title}:\n  {}", list.join("\n  ")));
        }
    }
    if !problems.is_empty() {
        bail!("least privilege does not hold:{problems}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_match_as_iam_matches_them() {
        assert!(matches("s3:Get*", "s3:GetBucketPolicy"));
        assert!(matches("config:describe*", "config:DescribeConfigurationRecorders"));
        assert!(!matches("s3:Get*", "s3:PutObject"));
        assert!(matches("s3:?etObject", "s3:GetObject"));
        assert!(!matches("s3:GetObject", "s3:GetObjectAcl"));
    }

    #[test]
    fn sessions_name_their_role() {
        assert_eq!(
            role_of("arn:aws:sts::111111111111:assumed-role/assure-step-config/run-1"),
            Some("assure-step-config")
        );
        assert_eq!(role_of("arn:aws:iam::111111111111:role/assure-step-config"), Some("assure-step-config"));
        assert_eq!(role_of("arn:aws:iam::111111111111:role/team/AssureExecutionRole"), Some("AssureExecutionRole"));
        assert_eq!(role_of("arn:aws:iam::111111111111:user/local-admin"), None);
    }

    #[test]
    fn every_aws_side_entry_names_a_granted_action() {
        let granted = granted();
        for (role, action, _) in AWS_SIDE {
            assert!(
                granted.iter().any(|(r, acts)| matches(role, r) && acts.contains(*action)),
                "{role} {action} is granted by no template role"
            );
        }
    }
}

//! The templates' roles resolved for one deployment: what the local deployment creates.

use assure_contract::StepName;
use serde_json::Value;

use crate::pipeline::resources::{queue_name, STATE_MACHINE, WATCH_STATE_MACHINE};

use super::*;

/// A role of the pipeline template, its intrinsic functions resolved for one deployment: what the
/// local deployment creates, so local runs use exactly the permissions a real one has.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRole {
    pub name: String,
    pub trust: Value,
    /// (policy name, document)
    pub policies: Vec<(String, Value)>,
}

/// The values a deployment gives the template's references.
pub struct Deployed<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub member_role: &'a str,
    pub checkpoint_bucket: &'a str,
    /// The pipeline key's ARN (`PipelineKey`'s Ref and Arn alike).
    pub pipeline_key: &'a str,
    pub security_account: &'a str,
    pub management_account: &'a str,
}

impl Deployed<'_> {
    fn get_att(&self, resource: &str) -> Option<String> {
        let (a, r) = (self.account, self.region);
        if resource == "CheckpointBucket" {
            return Some(format!("arn:aws:s3:::{}", self.checkpoint_bucket));
        }
        if resource == "PipelineKey" {
            return Some(self.pipeline_key.to_owned());
        }
        if resource == "StatesRole" {
            return Some(format!("arn:aws:iam::{a}:role/assure-states"));
        }
        for step in StepName::ALL {
            let id = logical(step);
            if resource == format!("{id}Queue") {
                return Some(format!("arn:aws:sqs:{r}:{a}:{}", queue_name(step)));
            }
            if resource == format!("{id}DeadLetterQueue") {
                return Some(format!("arn:aws:sqs:{r}:{a}:{}-dlq", queue_name(step)));
            }
        }
        None
    }

    fn reference(&self, name: &str) -> Option<String> {
        Some(match name {
            "AWS::Partition" => "aws".into(),
            "AWS::Region" => self.region.into(),
            "AWS::AccountId" => self.account.into(),
            "MemberRoleName" => self.member_role.into(),
            "CheckpointBucket" => self.checkpoint_bucket.into(),
            "SecurityAccount" => self.security_account.into(),
            "ManagementAccount" => self.management_account.into(),
            "PipelineKey" => self.pipeline_key.into(),
            "StateMachine" => format!("arn:aws:states:{}:{}:stateMachine:{STATE_MACHINE}", self.region, self.account),
            "WatchStateMachine" => {
                format!("arn:aws:states:{}:{}:stateMachine:{WATCH_STATE_MACHINE}", self.region, self.account)
            }
            _ => return None,
        })
    }

    /// The pipeline key's policy, resolved.
    pub fn pipeline_key_policy(&self) -> Result<Value, String> {
        self.resolve(&pipeline_template()["Resources"]["PipelineKey"]["Properties"]["KeyPolicy"])
    }

    /// Resolves Fn::Sub, Ref and Fn::GetAtt …Arn; fails naming what it cannot resolve.
    pub fn resolve(&self, v: &Value) -> Result<Value, String> {
        resolve_with(v, &|name| self.reference(name), &|res| self.get_att(res))
    }

    /// The member role as the template makes it in `member_account` for this pipeline.
    pub fn member_role(&self, member_account: &str) -> Result<TemplateRole, String> {
        let refs = |name: &str| match name {
            "AWS::AccountId" => Some(member_account.to_owned()),
            "PipelineAccount" => Some(self.account.to_owned()),
            "RoleName" => Some(self.member_role.to_owned()),
            other => self.reference(other),
        };
        let template = member_role_template();
        let props = &template["Resources"]["ExecutionRole"]["Properties"];
        let resolve = |v: &Value| resolve_with(v, &refs, &|_| None);
        let policies = props["Policies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| Ok((p["PolicyName"].as_str().unwrap_or_default().to_owned(), resolve(&p["PolicyDocument"])?)))
            .collect::<Result<_, String>>()?;
        Ok(TemplateRole {
            name: self.member_role.to_owned(),
            trust: resolve(&props["AssumeRolePolicyDocument"])?,
            policies,
        })
    }

    /// Every role of the pipeline template that a deployment without `AutoOnboard` has: the step
    /// roles, the operator role and the state machines' roles.
    pub fn pipeline_roles(&self) -> Result<Vec<TemplateRole>, String> {
        roles_of(&pipeline_template(), &|name| self.reference(name), &|res| self.get_att(res))
    }

    /// The roles of the management account's bootstrap stack for this pipeline.
    pub fn management_roles(&self) -> Result<Vec<TemplateRole>, String> {
        let refs = |name: &str| match name {
            "AWS::AccountId" => Some(self.management_account.to_owned()),
            "PipelineAccount" => Some(self.account.to_owned()),
            other => self.reference(other),
        };
        roles_of(&management_template(), &refs, &|_| None)
    }
}

/// The roles `template` makes whatever its parameters (those without a condition), resolved.
pub(super) fn roles_of(
    template: &Value,
    refs: &dyn Fn(&str) -> Option<String>,
    atts: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<TemplateRole>, String> {
    let resolve = |v: &Value| resolve_with(v, refs, atts);
    {
        let mut out = Vec::new();
        for res in template["Resources"].as_object().into_iter().flat_map(|m| m.values()) {
            if res["Type"] != "AWS::IAM::Role" || res.get("Condition").is_some() {
                continue;
            }
            let props = &res["Properties"];
            let name = props["RoleName"].as_str().unwrap_or_default();
            let policies = props["Policies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| Ok((p["PolicyName"].as_str().unwrap_or_default().to_owned(), resolve(&p["PolicyDocument"])?)))
                .collect::<Result<_, String>>()?;
            out.push(TemplateRole {
                name: name.to_owned(),
                trust: resolve(&props["AssumeRolePolicyDocument"])?,
                policies,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Fn::Sub, Ref and Fn::GetAtt …Arn resolved by `refs` and `atts`; fails naming what they cannot.
pub(super) fn resolve_with(
    v: &Value,
    refs: &dyn Fn(&str) -> Option<String>,
    atts: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, String> {
    Ok(match v {
        Value::Object(o) if o.len() == 1 && o.contains_key("Ref") => {
            let name = o["Ref"].as_str().unwrap_or_default();
            Value::String(refs(name).ok_or_else(|| format!("unresolved Ref {name}"))?)
        }
        Value::Object(o) if o.len() == 1 && o.contains_key("Fn::GetAtt") => {
            let res = o["Fn::GetAtt"][0].as_str().unwrap_or_default();
            Value::String(atts(res).ok_or_else(|| format!("unresolved Fn::GetAtt {res}"))?)
        }
        Value::Object(o) if o.len() == 1 && o.contains_key("Fn::Sub") => {
            let text = o["Fn::Sub"].as_str().unwrap_or_default();
            let mut out = String::new();
            let mut rest = text;
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..].find('}').ok_or_else(|| format!("unclosed ${{ in {text}"))? + start;
                let name = &rest[start + 2..end];
                let value = match name.strip_suffix(".Arn") {
                    Some(res) => atts(res),
                    None => refs(name),
                };
                out.push_str(&value.ok_or_else(|| format!("unresolved ${{{name}}} in {text}"))?);
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Object(o) => Value::Object(
            o.iter().map(|(k, v)| Ok((k.clone(), resolve_with(v, refs, atts)?))).collect::<Result<_, String>>()?,
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| resolve_with(v, refs, atts)).collect::<Result<_, _>>()?),
        other => other.clone(),
    })
}

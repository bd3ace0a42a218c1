//! CloudFormation stacks made or updated and waited for, their failures named from their events.

use std::collections::BTreeMap;

use std::time::Duration;

use assure_contract::StepError;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{Capability, Parameter, Stack, StackEvent};

use crate::aws::AwsResultExt;

pub(super) enum Template<'a> {
    Body(&'a str),
    Url(&'a str),
}

/// A stack as it ended.
pub(super) struct Applied {
    pub(super) id: String,
    pub(super) outputs: BTreeMap<String, String>,
}

impl Applied {
    /// The output `key` of the stack `name` (this one).
    pub(super) fn output(&self, name: &str, key: &str) -> Result<String, StepError> {
        self.outputs.get(key).cloned().ok_or_else(|| StepError::internal(format!("stack {name} has no {key} output")))
    }
}

/// Creates the stack, or updates it; waits for the operation to end, reporting its events.
#[allow(clippy::too_many_arguments)]
pub(super) async fn apply_stack(
    cf: &aws_sdk_cloudformation::Client,
    name: &str,
    template: Template<'_>,
    parameters: &[(&str, String)],
    capabilities: &[Capability],
    poll: Duration,
    progress: &mut (dyn FnMut(&str) + Send),
    changes: &mut Vec<String>,
) -> Result<Applied, StepError> {
    let params: Vec<Parameter> =
        parameters.iter().map(|(k, v)| Parameter::builder().parameter_key(*k).parameter_value(v).build()).collect();
    let mut current = describe(cf, name).await?;
    if let Some(stack) = &current {
        let status = stack.stack_status().map(|s| s.as_str()).unwrap_or_default();
        if status == "ROLLBACK_COMPLETE" {
            // A stack whose creation failed can only be deleted (API_UpdateStack).
            progress(&format!("{name}: ROLLBACK_COMPLETE from an earlier deploy; deleting it first"));
            let id = stack.stack_id().unwrap_or(name).to_owned();
            let seen = event_ids(cf, &id, name).await?;
            cf.delete_stack().stack_name(&id).send().await.aws(format!("cloudformation:DeleteStack {name}"))?;
            wait(cf, &id, name, seen, poll, progress, changes).await?;
            current = None;
        } else if status.ends_with("_IN_PROGRESS") {
            return Err(StepError::new(
                assure_contract::ErrorName::Retryable,
                format!("stack {name} is {status}: another deploy is running; try again when it ends"),
            ));
        }
    }
    // The events of earlier operations are not this one's.
    let seen = match &current {
        Some(stack) => event_ids(cf, stack.stack_id().unwrap_or(name), name).await?,
        None => Default::default(),
    };
    let id = match current {
        None => {
            let mut create = cf.create_stack().stack_name(name).set_parameters(Some(params));
            create = match template {
                Template::Body(b) => create.template_body(b),
                Template::Url(u) => create.template_url(u),
            };
            for c in capabilities {
                create = create.capabilities(c.clone());
            }
            let out = create.send().await.aws(format!("cloudformation:CreateStack {name}"))?;
            out.stack_id().unwrap_or(name).to_owned()
        }
        Some(stack) => {
            let id = stack.stack_id().unwrap_or(name).to_owned();
            let mut update = cf.update_stack().stack_name(&id).set_parameters(Some(params));
            update = match template {
                Template::Body(b) => update.template_body(b),
                Template::Url(u) => update.template_url(u),
            };
            for c in capabilities {
                update = update.capabilities(c.clone());
            }
            match update.send().await {
                Ok(_) => id,
                Err(e) if aws_message(&e).contains("No updates are to be performed") => {
                    return Ok(Applied { id, outputs: outputs_of(&stack) });
                }
                Err(e) => return Err(e).aws(format!("cloudformation:UpdateStack {name}")),
            }
        }
    };
    let stack = wait(cf, &id, name, seen, poll, progress, changes).await?;
    Ok(Applied { id, outputs: outputs_of(&stack) })
}

pub(super) fn aws_message<E: ProvideErrorMetadata, R>(e: &aws_sdk_cloudformation::error::SdkError<E, R>) -> String {
    match e {
        aws_sdk_cloudformation::error::SdkError::ServiceError(s) => s.err().message().unwrap_or_default().to_owned(),
        _ => String::new(),
    }
}

pub(super) fn outputs_of(stack: &Stack) -> BTreeMap<String, String> {
    stack.outputs().iter().filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned()))).collect()
}

pub(super) async fn describe(cf: &aws_sdk_cloudformation::Client, name: &str) -> Result<Option<Stack>, StepError> {
    match cf.describe_stacks().stack_name(name).send().await {
        Ok(out) => Ok(out.stacks().first().cloned()),
        Err(e) if aws_message(&e).contains("does not exist") => Ok(None),
        Err(e) => Err(e).aws(format!("cloudformation:DescribeStacks {name}")),
    }
}

/// The IDs of the stack's events so far (every page).
pub(super) async fn event_ids(
    cf: &aws_sdk_cloudformation::Client,
    id: &str,
    name: &str,
) -> Result<std::collections::HashSet<String>, StepError> {
    let mut out = std::collections::HashSet::new();
    let mut pages = cf.describe_stack_events().stack_name(id).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.aws(format!("cloudformation:DescribeStackEvents {name}"))?;
        out.extend(page.stack_events().iter().filter_map(|e| e.event_id().map(str::to_owned)));
    }
    Ok(out)
}

/// Waits for the stack's operation to end (at most an hour), reporting each new event; the stack
/// once it succeeded, or the failure with the first resource that failed and why.
pub(super) async fn wait(
    cf: &aws_sdk_cloudformation::Client,
    id: &str,
    name: &str,
    mut seen: std::collections::HashSet<String>,
    poll: Duration,
    progress: &mut (dyn FnMut(&str) + Send),
    changes: &mut Vec<String>,
) -> Result<Stack, StepError> {
    let mut first_failure: Option<String> = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
    loop {
        // Newest first, a page at a time, down to the first event already seen.
        let mut new: Vec<StackEvent> = Vec::new();
        let mut pages = cf.describe_stack_events().stack_name(id).into_paginator().send();
        'pages: while let Some(page) = pages.next().await {
            for e in page.aws(format!("cloudformation:DescribeStackEvents {name}"))?.stack_events() {
                if seen.contains(e.event_id().unwrap_or_default()) {
                    break 'pages;
                }
                new.push(e.clone());
            }
        }
        new.reverse();
        for e in &new {
            seen.insert(e.event_id().unwrap_or_default().to_owned());
            let status = e.resource_status().map(|s| s.as_str()).unwrap_or_default();
            let logical = e.logical_resource_id().unwrap_or_default();
            let kind = e.resource_type().unwrap_or_default();
            let reason = e.resource_status_reason().unwrap_or_default();
            let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
            if kind == "AWS::CloudFormation::Stack" {
                progress(&format!("stack {name}: {status}{why}"));
            } else {
                progress(&format!("stack {name}: {status:<18} {kind} {logical}{why}"));
            }
            if kind != "AWS::CloudFormation::Stack" {
                if status.ends_with("_FAILED") && first_failure.is_none() && !reason.contains("cancelled") {
                    first_failure = Some(format!("{logical} ({kind}): {reason}"));
                }
                let verb = match status {
                    "CREATE_COMPLETE" => Some("created"),
                    "UPDATE_COMPLETE" => Some("updated"),
                    "DELETE_COMPLETE" => Some("deleted"),
                    _ => None,
                };
                if let Some(verb) = verb {
                    changes.push(format!("{verb} {kind} {logical} (stack {name})"));
                }
            }
        }
        let stack = cf
            .describe_stacks()
            .stack_name(id)
            .send()
            .await
            .aws(format!("cloudformation:DescribeStacks {name}"))?
            .stacks()
            .first()
            .cloned()
            .ok_or_else(|| StepError::internal(format!("stack {name} vanished")))?;
        let status = stack.stack_status().map(|s| s.as_str().to_owned()).unwrap_or_default();
        if !status.ends_with("_IN_PROGRESS") {
            return match status.as_str() {
                "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "DELETE_COMPLETE" => Ok(stack),
                _ => Err(stack_failed(name, &status, first_failure.as_deref().or(stack.stack_status_reason()))),
            };
        }
        if tokio::time::Instant::now() > deadline {
            return Err(StepError::new(
                assure_contract::ErrorName::Retryable,
                format!("stack {name} is still {status} after an hour"),
            ));
        }
        tokio::time::sleep(poll).await;
    }
}

/// A stack operation that failed: named for what stopped it.
pub(super) fn stack_failed(name: &str, status: &str, reason: Option<&str>) -> StepError {
    let reason = reason.unwrap_or("no reason given");
    let kind = if reason.contains("AccessDenied") || reason.contains("not authorized") {
        assure_contract::ErrorName::AccessDenied
    } else if reason.contains("already exists") {
        assure_contract::ErrorName::Conflict
    } else if reason.contains("LimitExceeded") || reason.contains("Quota") {
        assure_contract::ErrorName::QuotaExceeded
    } else {
        assure_contract::ErrorName::Internal
    };
    StepError::new(kind, format!("stack {name} ended {status}: {reason}"))
}

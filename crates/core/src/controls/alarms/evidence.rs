//! Verify: the evidence that the alarms hold.

use assure_contract::{Evidence, RunInput, StepError};

use crate::aws::Aws;
use crate::controls::kit::{evidence, read_key};
use crate::controls::names::{ALARM_KEY_ALIAS, ALARM_PREFIX, ALARM_TOPIC, METRIC_NAMESPACE};

use super::catalogue;
use super::*;

/// Evidence: one per CIS alarm (its filter's pattern, namespace and value; the alarm's metric,
/// rule, actions), and the topic: its key (enabled, with exactly assure's policy), its policy (no
/// denial) and the subscription of the configured endpoint. Each names what it found.
pub async fn evidence_for(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    let target = aws.account(&run.account, &run.home_region).await?;
    let found = read(&target, true).await?;
    let topic = topic_arn(&target);
    let mut out = Vec::new();
    for (control, short, pattern) in all_filters() {
        let name = format!("{ALARM_PREFIX}{short}");
        let want = wanted_filter(short, pattern);
        let filter = match found.filters.get(&name) {
            None => "no metric filter".to_owned(),
            Some(f) if f.pattern != want.pattern => "a metric filter whose pattern is not the benchmark's".to_owned(),
            Some(f) if f.namespace != want.namespace || f.metric != want.metric || f.value != want.value => format!(
                "a metric filter publishing value {:?} to {}/{} instead of 1 to {}/{}",
                f.value, f.namespace, f.metric, want.namespace, want.metric
            ),
            Some(_) => String::new(),
        };
        let alarm = match found.alarms.get(&name) {
            None => "no alarm".to_owned(),
            Some(a) if a.namespace != want.namespace || a.metric != want.metric => {
                format!("an alarm on {}/{} instead of {}/{}", a.namespace, a.metric, want.namespace, want.metric)
            }
            Some(a) if a.rule != alarm_rule() => format!("an alarm firing on {} instead of {}", a.rule, alarm_rule()),
            Some(a) if !a.actions_enabled => "an alarm with its actions disabled".to_owned(),
            Some(a) if !a.actions.contains(&topic) => format!("an alarm notifying {:?}, not {ALARM_TOPIC}", a.actions),
            Some(_) => String::new(),
        };
        let problems: Vec<&str> = [filter.as_str(), alarm.as_str()].into_iter().filter(|p| !p.is_empty()).collect();
        out.push(evidence(
            &target,
            control,
            format!("cloudwatch:alarm/{name}"),
            problems.is_empty(),
            if problems.is_empty() {
                format!("metric filter with the CIS pattern, 1 to {METRIC_NAMESPACE}/{name}; alarm on it notifying {ALARM_TOPIC}")
            } else {
                problems.join("; ")
            },
        ));
    }
    // Encrypted with the alarm key, enabled, whose policy lets CloudWatch publish and denies
    // nothing: under the AWS managed key, or a key disabled, pending deletion or whose policy an
    // administrator rewrote, the topic is encrypted, yet no alarm could ever notify.
    let key = read_key(&target, ALARM_KEY_ALIAS).await?;
    let mut problems = Vec::new();
    match &key {
        None => problems.push(format!("no key {ALARM_KEY_ALIAS}")),
        Some(k) => {
            if found.topic_key() != Some(Some(k.arn.clone())) {
                problems.push(format!("topic encrypted with {:?}, not {ALARM_KEY_ALIAS}", found.topic_key().flatten()));
            }
            if k.state != "Enabled" {
                problems.push(format!("{ALARM_KEY_ALIAS} is {}", k.state));
            }
            if k.policy.as_ref() != Some(&alarm_key_policy(target.account.as_str(), &run.role_name)) {
                let denied = denials(k.policy.as_ref());
                problems.push(if denied.is_empty() {
                    format!("{ALARM_KEY_ALIAS}'s policy is not assure's")
                } else {
                    format!("{ALARM_KEY_ALIAS}'s policy is not assure's; it denies: {}", denied.join(", "))
                });
            }
        }
    }
    if let Some(why) = found.topic.as_ref().and_then(|a| a.get(UNREADABLE)) {
        problems.push(format!("the topic's policy refuses even assure: {why}"));
    }
    let topic_policy = found.topic.as_ref().and_then(|a| a.get("Policy")).and_then(|p| serde_json::from_str(p).ok());
    let denied = denials(topic_policy.as_ref());
    if !denied.is_empty() {
        problems.push(format!("the topic's policy denies: {}", denied.join(", ")));
    }
    out.push(evidence(
        &target,
        &catalogue::TOPIC_ENCRYPTED,
        topic.clone(),
        problems.is_empty(),
        if problems.is_empty() {
            format!("encrypted with {ALARM_KEY_ALIAS}, enabled, whose policy is assure's (CloudWatch may publish); the topic's policy denies nothing")
        } else {
            problems.join("; ")
        },
    ));
    // The endpoint the configuration names is subscribed: an alarm nobody receives is no alarm.
    // A subscription still waiting for its owner's confirmation is shown as such.
    if let Some(n) = &run.notify {
        let subs = match &found.topic {
            Some(a) if !a.contains_key(UNREADABLE) => subscriptions(&target, &topic).await?,
            _ => Vec::new(),
        };
        // Verify has no run facts: a redacted endpoint is matched by what it shows (its host).
        let sub = subs.iter().find(|(p, e, _)| p == n.protocol.as_str() && n.shows_as(e));
        out.push(evidence(
            &target,
            &catalogue::SUBSCRIBED,
            format!("{topic}/subscription/{}", n.protocol.as_str()),
            sub.is_some(),
            match sub {
                Some((_, _, true)) => format!("{} endpoint subscribed, confirmed", n.protocol.as_str()),
                Some((_, _, false)) => {
                    format!("{} endpoint subscribed, pending its owner's confirmation", n.protocol.as_str())
                }
                None => format!(
                    "the configured {} endpoint is not subscribed ({} other subscriptions)",
                    n.protocol.as_str(),
                    subs.len()
                ),
            },
        ));
    }
    Ok(out)
}

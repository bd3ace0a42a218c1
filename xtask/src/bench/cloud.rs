//! A local cloud for the bench: started, seeded and deployed once, stopped by its PID when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::Value;

use crate::{assure_at, local_up};

use super::*;

/// A private local cloud for one scenario.
pub(super) struct Cloud {
    pub(super) bin: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) env: std::cell::RefCell<Vec<(String, String)>>,
    pub(super) endpoint: String,
    /// The account the pipeline is deployed in (its checkpoint writes are plumbing).
    pub(super) pipeline: std::cell::RefCell<String>,
}

impl Cloud {
    pub(super) fn start(bin: &Path, name: &str, extra_env: &[(&str, String)]) -> anyhow::Result<Cloud> {
        let dir = std::env::temp_dir().join(format!("assure-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut extra: Vec<(String, String)> = vec![
            ("ASSURE_LOCAL_DIR".into(), dir.display().to_string()),
            ("ASSURE_CALL_LOG".into(), dir.join("calls.jsonl").display().to_string()),
            ("ASSURE_STEP_STATS".into(), dir.join("steps.jsonl").display().to_string()),
        ];
        extra.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let env = local_up(bin, &extra)?;
        let endpoint = env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").map(|(_, v)| v.clone()).unwrap_or_default();
        Ok(Cloud { bin: bin.to_path_buf(), dir, env: env.into(), endpoint, pipeline: Default::default() })
    }

    pub(super) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = assure_at(&self.bin, &self.env.borrow());
        c.args(args);
        c
    }

    /// Runs `assure ARGS`; (seconds, exit code, stdout). An onboarding's Verify state proves no
    /// delivery here unless the scenario asks: the onboarding rows measure onboarding, and proof of
    /// delivery has rows of its own.
    pub(super) fn timed(&self, args: &[&str]) -> anyhow::Result<(f64, i32, String)> {
        let mut args = args.to_vec();
        if args.first() == Some(&"onboard") && !args.contains(&"--prove-deliveries") {
            args.extend(["--prove-deliveries", "false"]);
        }
        let t = Instant::now();
        let out = self.cmd(&args).stderr(Stdio::null()).output()?;
        Ok((t.elapsed().as_secs_f64(), out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into()))
    }

    pub(super) fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let (_, code, out) = self.timed(args)?;
        if code != 0 {
            bail!("assure {} failed ({code})", args.join(" "));
        }
        serde_json::from_str(&out).with_context(|| format!("assure {} prints JSON", args.join(" ")))
    }

    /// One JSON value per line of a file in the cloud's directory (none if it does not exist).
    pub(super) fn jsonl(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join(name))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The calls logged since the last reset.
    pub(super) fn calls(&self) -> Vec<Value> {
        self.jsonl("calls.jsonl")
    }

    /// `calls` of this cloud counted: its own pipeline account's checkpoint writes are plumbing
    /// (the bench runs several clouds, each with a pipeline account of its own).
    pub(super) fn count(&self, calls: &[Value]) -> Calls {
        count(calls, &self.pipeline.borrow())
    }

    pub(super) fn reset_calls(&self) {
        let _ = std::fs::remove_file(self.dir.join("calls.jsonl"));
    }

    pub(super) fn step_stats(&self) -> Vec<Value> {
        self.jsonl("steps.jsonl")
    }

    /// A request to the local cloud's own API.
    pub(super) fn api(&self, method: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
        let answer = assure_core::local::http::request_blocking(
            &self.endpoint,
            method,
            path,
            &body.to_string(),
            std::time::Duration::from_secs(30),
        )
        .map_err(anyhow::Error::msg)?;
        Ok(serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
    }

    pub(super) fn seed_and_deploy(&self, accounts: u32, regions: &str) -> anyhow::Result<Value> {
        // Opt-in Regions are disabled in every account until enabled, as on AWS.
        let ids = self.json(&["local", "seed", "--accounts", &accounts.to_string(), "--regions", regions])?;
        let s = |k: &str| ids[k].as_str().unwrap_or_default().to_owned();
        // As the README deploys: the management account's bootstrap, then the pipeline in the
        // security account, as its administrator from here on.
        self.json(&["bootstrap", "--pipeline-account", &s("security"), "--output", "json"])?;
        let keys = self.json(&["local", "as", &s("security"), "--output", "json"])?;
        for (k, v) in keys.as_object().into_iter().flatten() {
            let mut env = self.env.borrow_mut();
            env.retain(|(have, _)| have != k);
            env.push((k.clone(), v.as_str().unwrap_or_default().to_owned()));
        }
        *self.pipeline.borrow_mut() = s("security");
        self.json(&["deploy", "--logging-account", &s("logging"), "--regions", regions, "--output", "json"])?;
        Ok(ids)
    }

    /// State transitions (states entered) of a run's executions.
    pub(super) fn transitions(&self, run: &str) -> anyhow::Result<usize> {
        let timeline = self.json(&["runs", "history", run, "--output", "json"])?;
        Ok(timeline.as_array().into_iter().flatten().filter(|e| e["event"] == "StateEntered").count())
    }

    /// The largest state (a state's input or output) of a run's executions, in bytes.
    pub(super) fn largest_state(&self, run: &str) -> anyhow::Result<u64> {
        let timeline = self.json(&["runs", "history", run, "--output", "json"])?;
        Ok(timeline.as_array().into_iter().flatten().filter_map(|e| e["stateBytes"].as_u64()).max().unwrap_or(0))
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.cmd(&["local", "down"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

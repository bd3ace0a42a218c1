//! The checkpoint store: one record per run × step × region in the pipeline's checkpoint bucket
//! (`runs/RUN/STEP/REGION.json`), written with S3 conditional writes so two workers can never both
//! complete one step. It is the audit record of what each step changed (with before and after
//! values) and the memory a retry uses to skip what is already done. Records hold no credentials:
//! the task token is stored only as a digest.

use assure_contract::{AccountId, Region, RunInput, StepError, StepName, StepOutput};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::{error_code, Aws, AwsResultExt};
use crate::pipeline::resources::checkpoint_bucket;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Completed,
    Failed,
}

/// One step's record in one region of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub run_id: String,
    pub step: StepName,
    pub region: Region,
    pub account: AccountId,
    pub status: Status,
    /// Digest of what the step acts on (account, regions, organization, role, step, region).
    pub input_digest: String,
    /// 1 for the first attempt; each new task (a retry) adds one.
    pub attempt: u32,
    /// Digest of the task token of the attempt holding the record.
    pub task: String,
    /// `host:pid` of the worker.
    pub worker: String,
    pub started_at: String,
    /// While the record is running: until when its worker is known to be alive. The worker renews
    /// it while it works; a worker of another task waits for a held record rather than taking it
    /// over (two workers would act on one step, and only one of their records would be kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Seconds the step's attempts waited inside it for AWS, all together: a change it made
    /// propagating, a resource still being made, a delivery on its way (`aws::counting_waits`).
    /// Apart from the work, in the benchmark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<StepOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<assure_contract::StepError>,
}

impl Record {
    /// A first attempt's record of `step` in `region`, running now under `task` (a task token's
    /// digest) on `worker`.
    pub fn first(run: &RunInput, step: StepName, region: &Region, task: String, worker: String) -> Record {
        Record {
            run_id: run.run_id.to_string(),
            step,
            region: region.clone(),
            account: run.account.clone(),
            status: Status::Running,
            input_digest: input_digest(run, step, region),
            attempt: 1,
            task,
            worker,
            started_at: now(),
            held_until: None,
            finished_at: None,
            waited_seconds: None,
            output: None,
            error: None,
        }
    }
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What a step's result depends on; the run id and the failure policy do not count.
pub fn input_digest(run: &RunInput, step: StepName, region: &Region) -> String {
    let mut v = serde_json::json!({
        "account": run.account, "regions": run.regions, "homeRegion": run.home_region,
        "org": run.org, "roleName": run.role_name, "step": step, "region": region,
    });
    // Only when set, so runs without notifications keep the digests they always had.
    if let Some(n) = &run.notify {
        v["notify"] = serde_json::json!(n);
    }
    if run.root_access != assure_contract::RootAccess::Keep {
        v["rootAccess"] = serde_json::json!(run.root_access);
    }
    sha(v.to_string().as_bytes())
}

pub fn task_digest(token: &str) -> String {
    sha(token.as_bytes())[..16].to_owned()
}

/// `host:pid` of this process, as checkpoints and run locks name their holder.
pub fn worker_id() -> String {
    format!("{}:{}", std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into()), std::process::id())
}

pub fn now() -> String {
    from_now(std::time::Duration::ZERO)
}

/// The time `after` from now, as records write times.
pub fn from_now(after: std::time::Duration) -> String {
    (time::OffsetDateTime::now_utc() + after).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

impl Record {
    /// How much longer a running record's worker is known to be alive: `None` when the record is
    /// not running, has no hold (written before holds were), or its hold ran out.
    pub fn held_for(&self) -> Option<std::time::Duration> {
        if self.status != Status::Running {
            return None;
        }
        let until = self.held_until.as_deref()?;
        let until = time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339).ok()?;
        let left = until - time::OffsetDateTime::now_utc();
        left.is_positive().then(|| std::time::Duration::try_from(left).ok()).flatten()
    }
}

/// The checkpoint bucket of the pipeline.
#[derive(Clone)]
pub struct Store {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

/// The precondition of a write.
pub enum Expect {
    /// No precondition: the write replaces whatever is there.
    Any,
    /// The record must not exist yet.
    Absent,
    /// The record must still be the one read (its ETag).
    Unchanged(String),
}

/// What a run's earlier steps established, read from their checkpoints when a later step asks
/// ([`crate::aws::Facts`]): the logging key's ARN from the logging-bucket step's record, the roles
/// from the service-roles step's (each at its [`crate::aws::Fact::key`] in the recorded snapshot),
/// the alarm endpoint from the deployment's settings.
pub struct RunFacts {
    store: Store,
    run_id: String,
    home_region: Region,
    /// Each record is read once per task: every region of it asks.
    logging_bucket: tokio::sync::OnceCell<Option<serde_json::Value>>,
    service_roles: tokio::sync::OnceCell<Option<serde_json::Value>>,
}

impl RunFacts {
    pub fn new(store: Store, run: &RunInput) -> RunFacts {
        RunFacts {
            store,
            run_id: run.run_id.to_string(),
            home_region: run.home_region.clone(),
            logging_bucket: tokio::sync::OnceCell::new(),
            service_roles: tokio::sync::OnceCell::new(),
        }
    }

    /// The snapshot `step` recorded in the home region, if it completed.
    async fn snapshot(&self, step: StepName) -> Option<serde_json::Value> {
        let key = Store::key(&self.run_id, step, &self.home_region);
        let (rec, _) = self.store.get(&key).await.ok().flatten()?;
        rec.output.filter(|_| rec.status == Status::Completed).map(|o| o.snapshot)
    }
}

impl crate::aws::Facts for RunFacts {
    fn get<'a>(
        &'a self,
        fact: crate::aws::Fact<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<serde_json::Value>> + Send + 'a>> {
        use crate::aws::Fact;
        Box::pin(async move {
            let (cell, step) = match fact {
                Fact::NotifyEndpoint => {
                    let settings: Option<(crate::pipeline::deploy::Settings, String)> =
                        self.store.get_json(crate::pipeline::deploy::SETTINGS_KEY).await.ok().flatten();
                    return settings.and_then(|(s, _)| s.notify).map(|n| serde_json::Value::String(n.endpoint));
                }
                Fact::LoggingKeyArn => (&self.logging_bucket, StepName::LoggingBucket),
                Fact::Role { .. } => (&self.service_roles, StepName::ServiceRoles),
            };
            let snapshot = cell.get_or_init(|| self.snapshot(step)).await;
            snapshot.as_ref().and_then(|s| s.get(fact.key())).filter(|v| !v.is_null()).cloned()
        })
    }
}

impl Store {
    pub fn new(aws: &Aws) -> Store {
        let p = aws.pipeline();
        Store { s3: p.s3(), bucket: checkpoint_bucket(p.account.as_str(), p.region.as_str()) }
    }

    pub fn key(run_id: &str, step: StepName, region: &Region) -> String {
        format!("runs/{run_id}/{}/{region}.json", step.as_str())
    }

    /// Where a run's discover leaves what it read in every region, in one object (`before/RUN.json`,
    /// region → snapshot), so the task of a later step reads it once for all its regions. The
    /// regions' discover records stay the record rollback reads.
    fn before_key(run_id: &str) -> String {
        format!("before/{run_id}.json")
    }

    pub async fn put_before(
        &self,
        run_id: &str,
        regions: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), StepError> {
        self.put_json(&Self::before_key(run_id), regions, Expect::Any).await.map(|_| ())
    }

    /// What the run's discover read, by region, if it has finished.
    pub async fn before(&self, run_id: &str) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StepError> {
        Ok(self.get_json(&Self::before_key(run_id)).await?.map(|(m, _)| m))
    }

    /// Records a step done outside a task (by `by`): its output, completed now, attempt 1. A
    /// record already there (the run started before) is left as it is.
    pub async fn record_done(&self, run: &RunInput, out: StepOutput, by: &str) -> Result<(), StepError> {
        let mut rec = Record::first(run, out.step, &out.region, String::new(), by.to_owned());
        rec.status = Status::Completed;
        rec.finished_at = Some(rec.started_at.clone());
        rec.output = Some(out);
        self.put(&Self::key(run.run_id.as_str(), rec.step, &rec.region), &rec, Expect::Absent).await.map(|_| ())
    }

    /// The record and its ETag, if there is one.
    pub async fn get(&self, key: &str) -> Result<Option<(Record, String)>, StepError> {
        self.get_json(key).await
    }

    /// Writes a record if the precondition holds. `Ok(None)` when it does not (someone else wrote).
    pub async fn put(&self, key: &str, rec: &Record, expect: Expect) -> Result<Option<String>, StepError> {
        self.put_json(key, rec, expect).await
    }

    /// Any JSON object of the bucket (a record, a run lock, a rollback ledger) and its ETag.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<(T, String)>, StepError> {
        let out = match self.s3.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(o) => o,
            Err(e) if error_code(&e) == Some("NoSuchKey") => return Ok(None),
            Err(e) => return Err(e).aws(format!("s3:GetObject {key}")),
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StepError::new(assure_contract::ErrorName::Retryable, format!("reading {key}: {e}")))?
            .into_bytes();
        let value = serde_json::from_slice(&bytes).map_err(|e| StepError::internal(format!("{key}: {e}")))?;
        Ok(Some((value, etag)))
    }

    /// Writes any JSON object if the precondition holds. `Ok(None)` when it does not.
    pub async fn put_json<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        expect: Expect,
    ) -> Result<Option<String>, StepError> {
        let body = serde_json::to_vec(value).map_err(|e| StepError::internal(e.to_string()))?;
        let mut req =
            self.s3.put_object().bucket(&self.bucket).key(key).content_type("application/json").body(body.into());
        req = match expect {
            Expect::Any => req,
            Expect::Absent => req.if_none_match("*"),
            Expect::Unchanged(etag) => req.if_match(etag),
        };
        match req.send().await {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_owned())),
            Err(e) if matches!(error_code(&e), Some("PreconditionFailed" | "ConditionalRequestConflict")) => Ok(None),
            Err(e) => Err(e).aws(format!("s3:PutObject {key}")),
        }
    }

    /// Every key under `prefix`, in S3's order (lexicographic).
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, StepError> {
        let mut keys = Vec::new();
        let mut pages = self.s3.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            keys.extend(page.aws("s3:ListObjectsV2")?.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        }
        Ok(keys)
    }

    /// The ids of every run with checkpoints (`runs/RUN/…`).
    pub async fn run_ids(&self) -> Result<Vec<String>, StepError> {
        let mut ids = Vec::new();
        let mut pages =
            self.s3.list_objects_v2().bucket(&self.bucket).prefix("runs/").delimiter("/").into_paginator().send();
        while let Some(page) = pages.next().await {
            for p in page.aws("s3:ListObjectsV2")?.common_prefixes() {
                if let Some(id) = p.prefix().and_then(|p| p.strip_prefix("runs/")).and_then(|p| p.strip_suffix('/')) {
                    ids.push(id.to_owned());
                }
            }
        }
        Ok(ids)
    }

    /// Deletes an object (S3 answers a missing key as deleted).
    pub async fn delete(&self, key: &str) -> Result<(), StepError> {
        self.s3.delete_object().bucket(&self.bucket).key(key).send().await.aws(format!("s3:DeleteObject {key}"))?;
        Ok(())
    }

    /// Every record of a run.
    pub async fn list(&self, run_id: &str) -> Result<Vec<Record>, StepError> {
        let mut keys = Vec::new();
        let mut pages =
            self.s3.list_objects_v2().bucket(&self.bucket).prefix(format!("runs/{run_id}/")).into_paginator().send();
        while let Some(page) = pages.next().await {
            for o in page.aws("s3:ListObjectsV2")?.contents() {
                // Records only: `runs/RUN/STEP/REGION.json`. A bulk run keeps its accounts and its
                // Distributed Map's results beside them.
                let key = o.key().unwrap_or_default();
                let parts: Vec<&str> = key.split('/').collect();
                if parts.len() == 4 && assure_contract::StepName::parse(parts[2]).is_some() {
                    keys.push(key.to_owned());
                }
            }
        }
        let mut out = Vec::new();
        for k in keys {
            if let Some((r, _)) = self.get(&k).await? {
                out.push(r);
            }
        }
        Ok(out)
    }
}

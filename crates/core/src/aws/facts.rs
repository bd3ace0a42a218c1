//! What a task's steps take from earlier steps of its run instead of finding it again: the facts,
//! typed, and where a task finds them ([`Facts`], the checkpoints' `RunFacts`).

use assure_contract::AccountId;

use super::Aws;

/// A fact an earlier step of a run established, which a later step of the same run may take
/// instead of finding it again in the accounts. Read on demand, only by the steps that need one
/// ([`Aws::logging_key_fact`], [`Aws::notify_endpoint_fact`], [`Aws::role_fact`]). Verify never
/// has them: it finds for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact<'a> {
    /// The logging key's ARN, as the run's logging-bucket step ensured the key.
    LoggingKeyArn,
    /// The alarm endpoint of the deployment's settings, whole: a run carries it with its secret
    /// part left out ([`assure_contract::Notify::for_runs`]).
    NotifyEndpoint,
    /// A role the run's service-roles step ensured in `account` ([`RoleFact`]).
    Role { account: &'a AccountId, name: &'a str },
}

impl Fact<'_> {
    /// The fact's key in the snapshot its step records (the logging-bucket step's, the
    /// service-roles step's); the deployment's settings hold the endpoint.
    pub fn key(&self) -> String {
        match self {
            Fact::LoggingKeyArn => LOGGING_KEY_FACT.to_owned(),
            Fact::NotifyEndpoint => "notifyEndpoint".to_owned(),
            Fact::Role { account, name } => format!("role/{account}/{name}"),
        }
    }
}

/// The key of the logging key's ARN in the logging-bucket step's snapshot ([`Fact::LoggingKeyArn`]).
pub const LOGGING_KEY_FACT: &str = "loggingKeyArn";

/// A role the run's service-roles step ensured, as its snapshot records it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoleFact {
    pub arn: String,
    /// Whether the step created it (so it has no other inline policy yet).
    pub made: bool,
}

/// Where a task finds the facts its run established (the checkpoints, on AWS and locally).
pub trait Facts: Send + Sync {
    /// The fact as its step recorded it, if the run established it.
    fn get<'a>(
        &'a self,
        fact: Fact<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<serde_json::Value>> + Send + 'a>>;
}

impl Aws {
    /// The fact an earlier step of the run established, as recorded, if known. None in plan mode:
    /// a plan reads what is there.
    async fn fact(&self, fact: Fact<'_>) -> Option<serde_json::Value> {
        match &self.facts {
            Some(f) if !self.base.plan => f.get(fact).await,
            _ => None,
        }
    }

    /// The logging key's ARN, as the run's logging-bucket step ensured it.
    pub async fn logging_key_fact(&self) -> Option<String> {
        self.fact(Fact::LoggingKeyArn).await.and_then(|v| v.as_str().map(str::to_owned))
    }

    /// The deployment's alarm endpoint, whole ([`Fact::NotifyEndpoint`]).
    pub async fn notify_endpoint_fact(&self) -> Option<String> {
        self.fact(Fact::NotifyEndpoint).await.and_then(|v| v.as_str().map(str::to_owned))
    }

    /// The role `name` in `account`, as the run's service-roles step ensured it. A record that
    /// does not read as one is no fact: the role is found again.
    pub async fn role_fact(&self, account: &AccountId, name: &str) -> Option<RoleFact> {
        self.fact(Fact::Role { account, name }).await.and_then(|v| serde_json::from_value(v).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fact_has_the_key_its_step_records_and_a_role_reads_as_recorded() {
        let account: AccountId = "111111111111".parse().unwrap();
        assert_eq!(Fact::LoggingKeyArn.key(), "loggingKeyArn");
        assert_eq!(Fact::NotifyEndpoint.key(), "notifyEndpoint");
        assert_eq!(Fact::Role { account: &account, name: "assure-config" }.key(), "role/111111111111/assure-config");
        // The service-roles step's record, as runs before this type wrote it too.
        let recorded = serde_json::json!({"arn": "arn:aws:iam::111111111111:role/assure-config", "made": true});
        let fact: RoleFact = serde_json::from_value(recorded.clone()).unwrap();
        assert_eq!(fact, RoleFact { arn: "arn:aws:iam::111111111111:role/assure-config".into(), made: true });
        assert_eq!(serde_json::to_value(&fact).unwrap(), recorded);
        assert!(serde_json::from_value::<RoleFact>(serde_json::json!({"arn": 5})).is_err());
    }
}

//! The configuration file: read as TOML, checked against the JSON Schema generated from
//! `assure_contract::Config` (the same schema `assure config schema` prints), then typed. Every
//! problem names the file, the field (as a dotted path) and the reason.

use std::path::Path;
use std::process::ExitCode;

use assure_contract::{Config, StepError};
use clap::Subcommand;

use crate::global::Global;

/// A dotted field path from a JSON pointer: `/organization/logging_account` →
/// `organization.logging_account`, `/regions/1` → `regions[1]`.
fn field(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        if part.bytes().all(|b| b.is_ascii_digit()) && !part.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part.replace("~1", "/").replace("~0", "~"));
        }
    }
    if out.is_empty() {
        "(top level)".to_owned()
    } else {
        out
    }
}

/// Parses and validates the text of a configuration file; `origin` names it in errors.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Config, StepError> {
    let value: toml::Value =
        toml::from_str(text).map_err(|e| StepError::invalid_input(format!("{origin}: not valid TOML: {e}")))?;
    let doc = serde_json::to_value(value).map_err(|e| StepError::internal(e.to_string()))?;
    let schema = Config::schema();
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| StepError::internal(format!("the configuration schema does not compile: {e}")))?;
    let problems: Vec<String> =
        validator.iter_errors(&doc).map(|e| format!("{}: {}", field(&e.instance_path().to_string()), e)).collect();
    if !problems.is_empty() {
        return Err(StepError::invalid_input(format!("{origin}: {}", problems.join("; "))));
    }
    // The schema passed, so this can only fail on what a schema cannot say.
    let config: Config = serde_json::from_value(doc).map_err(|e| StepError::invalid_input(format!("{origin}: {e}")))?;
    if let Some(n) = &config.notifications {
        n.validate().map_err(|e| StepError::invalid_input(format!("{origin}: {}", e.message)))?;
    }
    let org = &config.organization;
    assure_contract::OrgLayout::distinct_roles(&org.logging_account, &org.security_account)
        .map_err(|e| StepError::invalid_input(format!("{origin}: organization.security_account: {}", e.message)))?;
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in config.regions.iter().enumerate() {
        if !seen.insert(r) {
            return Err(StepError::invalid_input(format!("{origin}: regions[{i}]: {r} is listed twice")));
        }
    }
    Ok(config)
}

/// Reads and validates a configuration file.
pub(crate) fn load(path: &Path) -> Result<Config, StepError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StepError::invalid_input(format!("--config {}: cannot read it: {e}", path.display())))?;
    parse(&text, &path.display().to_string())
}

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the JSON Schema of the configuration file (for editors and CI checks).
    ///
    /// Example: assure config schema > assure.schema.json
    Schema,
    /// Check a configuration file: exit 0 and print it with its defaults filled in, or exit 2
    /// naming each bad field and why.
    ///
    /// Example: assure config check assure.toml
    Check {
        /// The file (default: --config).
        file: Option<std::path::PathBuf>,
    },
}

pub(crate) fn run(g: &Global, cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Schema => {
            println!("{}", serde_json::to_string_pretty(&assure_contract::Config::schema())?);
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Check { file } => {
            let Some(path) = file.or_else(|| g.config.clone()) else {
                return Err(StepError::invalid_input("config check: name a file (or set --config)").into());
            };
            let c = load(&path)?;
            if g.json() {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                println!("{}", toml::to_string(&c)?);
                eprintln!("{}: valid", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
regions = ["us-east-1", "eu-west-1"]
[organization]
logging_account = "111111111111"
security_account = "222222222222"
[notifications]
protocol = "email"
endpoint = "secops@example.com"
"#;

    #[test]
    fn a_good_file_gets_defaults() {
        let c = parse(GOOD, "assure.toml").unwrap();
        assert_eq!(c.regions.len(), 2);
        assert_eq!(c.role_name, assure_contract::DEFAULT_ROLE_NAME);
        assert_eq!(c.options.concurrency, 4);
        assert_eq!(c.notifications.unwrap().endpoint, "secops@example.com");
    }

    fn error(text: &str) -> String {
        parse(text, "assure.toml").unwrap_err().message
    }

    #[test]
    fn the_fleets_schedule_is_an_expression_eventbridge_accepts() {
        let with = |schedule: &str| format!("{GOOD}\n[fleet]\nschedule = \"{schedule}\"\n");
        for good in ["rate(1 day)", "rate(6 hours)", "rate(10 minutes)", "rate(1 minute)", "cron(0 6 * * ? *)"] {
            let c = parse(&with(good), "assure.toml").unwrap_or_else(|e| panic!("{good}: {}", e.message));
            assert_eq!(c.fleet.schedule, good);
        }
        // EventBridge wants the singular unit for 1 and the plural for more, and six cron fields.
        for bad in ["rate(1 hours)", "rate(2 day)", "rate(0 days)", "cron(0 6 * * ?)", "daily"] {
            let e = error(&with(bad));
            assert!(e.contains("fleet.schedule"), "{bad}: {e}");
        }
        let c = parse(GOOD, "assure.toml").unwrap();
        assert_eq!(
            (c.fleet.schedule.as_str(), c.fleet.on_drift, c.fleet.max_repairs_per_day),
            ("rate(1 day)", assure_contract::OnDrift::Report, 10)
        );
        let e = error(&format!("{GOOD}\n[fleet]\non_drift = \"fix\"\n"));
        assert!(e.contains("fleet.on_drift"), "{e}");
    }

    #[test]
    fn errors_name_the_field_and_the_reason() {
        let e = error(&GOOD.replace("111111111111", "1111"));
        assert!(e.starts_with("assure.toml: organization.logging_account: "), "{e}");
        assert!(e.contains("^[0-9]{12}$"), "{e}");
        let e = error(&GOOD.replace("eu-west-1", "eu-west-9"));
        assert!(e.contains("regions[1]: "), "{e}");
        let e = error(&format!("{GOOD}\n[options]\nconcurency = 3\n"));
        assert!(e.contains("options: ") && e.contains("concurency"), "{e}");
        let e = error(&format!("{GOOD}\n[options]\nconcurrency = 0\n"));
        assert!(e.contains("options.concurrency: 0 is less than the minimum of 1"), "{e}");
        let e = error(&GOOD.replace("secops@example.com", "secops"));
        assert!(e.contains("notifications.endpoint") && e.contains("email"), "{e}");
        let e = error(&GOOD.replace("regions = [\"us-east-1\", \"eu-west-1\"]", "regions = []"));
        assert!(e.contains("regions: "), "{e}");
        let e = error(&GOOD.replace("eu-west-1", "us-east-1"));
        assert!(e.contains("regions[1]: us-east-1 is listed twice"), "{e}");
        let e = error("regions = [");
        assert!(e.starts_with("assure.toml: not valid TOML"), "{e}");
        let e = error("regions = [\"us-east-1\"]");
        assert!(e.contains("organization"), "a missing section is named: {e}");
    }
}

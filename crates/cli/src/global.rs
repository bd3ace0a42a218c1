//! The global flags and what every command makes of them: the output format, the configuration
//! file, the operator's connection, the regions list.

use assure_contract::{Region, StepError};
use assure_core::aws::Aws;
use clap::{Args, ValueEnum};

#[derive(Args)]
pub(crate) struct Global {
    /// AWS profile to use (default: the standard credential chain).
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub(crate) profile: Option<String>,
    /// AWS region of the pipeline (default: from the profile or AWS_REGION).
    #[arg(long, global = true)]
    pub(crate) region: Option<String>,
    /// Output format of data written to stdout.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub(crate) output: Output,
    /// Configuration file (TOML; see `assure config schema`). Flags given on the command line win.
    #[arg(long, global = true, env = "ASSURE_CONFIG")]
    pub(crate) config: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Table,
    Json,
}

impl Global {
    /// Whether data goes to stdout as JSON.
    pub(crate) fn json(&self) -> bool {
        self.output == Output::Json
    }
}

/// The configuration file, when one is given.
pub(crate) fn config_of(g: &Global) -> Result<Option<assure_contract::Config>, StepError> {
    g.config.as_deref().map(crate::config::load).transpose()
}

/// The operator's connection: the caller's own credentials in the pipeline account, and member
/// accounts reached through the operator role (the member role trusts it and the step roles only).
pub(crate) async fn connect(g: &Global) -> anyhow::Result<Aws> {
    Ok(Aws::load(g.profile.as_deref(), g.region.as_deref())
        .await?
        .through(assure_core::pipeline::resources::OPERATOR_ROLE))
}

pub(crate) fn parse_regions(list: &[String]) -> Result<Vec<Region>, StepError> {
    list.iter()
        .map(|r| r.trim().parse::<Region>().map_err(|e| StepError::invalid_input(format!("--regions: {}", e.message))))
        .collect()
}

//! A run followed with `--output json`, read as data rather than as the text people read.

use serde_json::Value;

/// A run followed with `--output json` (`assure onboard`, `runs retry`): the step events as they
/// came and the result, read from stdout's JSON lines instead of the text people read.
pub struct Followed {
    pub events: Vec<Value>,
    pub result: Value,
}

impl Followed {
    /// The JSON lines of `out`.
    ///
    /// # Panics
    /// When `out` has no `finished` line.
    pub fn of(out: &str) -> Followed {
        let lines: Vec<Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let result = lines
            .iter()
            .find(|l| l["event"] == "finished")
            .map(|l| l["result"].clone())
            .unwrap_or_else(|| panic!("no finished line in:\n{out}"));
        let events = lines.into_iter().filter(|l| l["event"] != "finished").collect();
        Followed { events, result }
    }

    /// The execution's status (`SUCCEEDED`, `FAILED`, …).
    pub fn status(&self) -> &str {
        self.result["status"].as_str().unwrap_or_default()
    }

    /// The execution's error name, if it failed.
    pub fn error(&self) -> &str {
        self.result["error"].as_str().unwrap_or_default()
    }

    /// The changes every step of the run made.
    pub fn changes(&self) -> usize {
        self.outputs().map(|o| o["changes"].as_array().map_or(0, Vec::len)).sum()
    }

    /// (passed, all) of the run's evidence: the controls' (`deliveries` false) or the delivery
    /// paths' (`deliveries` true).
    pub fn verified(&self, deliveries: bool) -> (usize, usize) {
        let evidence: Vec<&Value> = self
            .outputs()
            .flat_map(|o| o["evidence"].as_array().into_iter().flatten())
            .filter(|e| e["control"].as_str().unwrap_or_default().starts_with("deliveries.") == deliveries)
            .collect();
        (evidence.iter().filter(|e| e["passed"] == true).count(), evidence.len())
    }

    /// Whether `step` succeeded in some region, as its event says.
    pub fn succeeded(&self, step: &str) -> bool {
        self.events.iter().any(|e| e["event"] == "stepSucceeded" && e["step"] == step)
    }

    /// Whether `step` started at all.
    pub fn started(&self, step: &str) -> bool {
        self.events.iter().any(|e| e["event"] == "stepStarted" && e["step"] == step)
    }

    fn outputs(&self) -> impl Iterator<Item = &Value> {
        self.result["outputs"].as_array().into_iter().flatten()
    }
}

//! The brownfield matrix: accounts with pre-existing setups of every kind assure must find, take
//! over and give back. Each case is onboarded, verified and rolled back; then an independent
//! snapshot (botocore, tests/brownfield.py, not assure's code) must equal the one taken before
//! onboarding, except for what the rollback reported as not restorable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use assure_e2e::LocalCloud;
use serde_json::Value;

const REGIONS: &str = "us-east-1,eu-west-1";

/// Several setups per account, in the home region and another one. Every account also carries the
/// seed's: a multi-region trail homed in us-east-1, a custom-named Config recorder and encrypted
/// channel, GuardDuty under an invitation administrator outside the organization, and custom
/// Session Manager preferences, in both regions.
const MATRIX: [&[&str]; 4] = [
    &["trail-organization", "trail-single-region-elsewhere", "session-manager-full", "access-analyzer-own"],
    &[
        "trail-multi-region-elsewhere",
        "config-partial-recorder",
        "guardduty-filters-features",
        "guardduty-member-of-this-organization",
    ],
    &["trail-stopped-in-home", "cis-alarm-other-name", "scp-existing"],
    &["config-recorder-default-name-home", "config-service-linked-recorder", "guardduty-no-detector"],
];

/// Differences a rollback may leave, each only with the line of its report that says so: (a prefix
/// of the snapshot path, text the report's not-restorable line for it contains).
fn explanation(path: &str) -> Option<(String, &'static [&'static str])> {
    let region = path.split('/').nth(1).unwrap_or_default().to_owned();
    if path.starts_with("guardduty/") && path.ends_with("/detector/administrator") {
        // Under a foreign administrator before, or no detector at all: a member of the security account now.
        return Some((
            format!("guardduty {region}"),
            &["foreign administrator", "stays a member of the security account"],
        ));
    }
    if path.starts_with("guardduty/") && path.ends_with("/detector") {
        return Some((format!("guardduty {region}"), &["created by assure"]));
    }
    match path {
        "iam/role/AWSServiceRoleForConfig" => Some(("config".into(), &["AWSServiceRoleForConfig"])),
        "iam/role/AWSServiceRoleForAccessAnalyzer" => {
            Some(("access-analyzer".into(), &["AWSServiceRoleForAccessAnalyzer"]))
        }
        p if p.starts_with("logs/us-east-1/group/assure/") => Some(("cloudtrail".into(), &["log group"])),
        _ => None,
    }
}

fn python() -> PathBuf {
    // The AWS CLI's own Python: `cargo xtask test` names the pinned CLI it installs.
    let cli = PathBuf::from(std::env::var("ASSURE_AWS_CLI").expect("ASSURE_AWS_CLI (cargo xtask test sets it)"));
    cli.with_file_name("python")
}

fn harness(cloud: &LocalCloud, management: &str, account: &str, args: &[&str]) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("brownfield.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .args(["--endpoint", &cloud.endpoint, "--management", management, "--account", account])
        .output()
        .expect("run tests/brownfield.py");
    assert!(out.status.success(), "brownfield.py {args:?} {account}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn snapshot(cloud: &LocalCloud, management: &str, account: &str) -> BTreeMap<String, Value> {
    let text = harness(cloud, management, account, &["snapshot", "--regions", REGIONS]);
    serde_json::from_str(&text).expect("snapshot JSON")
}

/// The paths where `a` and `b` differ.
fn differences(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_existing_setup_is_taken_over_and_rolled_back_to_exactly_itself() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_accounts_and_deploy(MATRIX.len() as u32, REGIONS);
    let mgmt = ids["management"].as_str().unwrap().to_owned();
    let accounts: Vec<String> =
        ids["external"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    let mut before = Vec::new();
    for (account, cases) in accounts.iter().zip(MATRIX) {
        for case in cases {
            harness(&cloud, &mgmt, account, &["setup", "--case", case]);
        }
        before.push(snapshot(&cloud, &mgmt, account));
    }
    let linked = "config/eu-west-1/recorder/AWSConfigurationRecorderForSecurityHubCSPM";
    assert!(before[3].contains_key(linked), "the service-linked recorder exists: {:?}", before[3].keys());

    // Onboard all four at once (one run per account).
    let runs: Vec<(i32, String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let cloud = &cloud;
                s.spawn(move || cloud.run(&["onboard", a, "--run-id", &format!("matrix-{i}")]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (code, out, err)) in runs.iter().enumerate() {
        assert_eq!(*code, 0, "onboarding {:?} failed:\n{out}\n{err}", MATRIX[i]);
    }
    for account in &accounts {
        let (code, out, err) = cloud.run(&["verify", account]);
        assert_eq!(code, 0, "verify {account}:\n{out}\n{err}");
        // Taken over for good: a run now would change nothing (no trail left to retire).
        let (code, out, err) = cloud.run(&["plan", account, "--regions", REGIONS]);
        assert_eq!(code, 0, "plan {account}: {err}");
        assert!(out.contains("0 change(s) would be made"), "plan {account} after onboarding:\n{out}");
    }
    let during: Vec<_> = accounts.iter().map(|a| snapshot(&cloud, &mgmt, a)).collect();
    for (i, cases) in MATRIX.iter().enumerate() {
        eprintln!("{cases:?}: onboarding changed {:#?}", differences(&before[i], &during[i]));
    }
    // Taken over by merging: what the baseline does not fix stays as the account had it.
    let prefs = &during[0]["ssm/eu-west-1/session-preferences"]["inputs"];
    for (field, kept) in [
        ("cloudWatchLogGroupName", "/team/sessions"),
        ("runAsDefaultUser", "ops"),
        ("idleSessionTimeout", "15"),
        ("maxSessionDuration", "120"),
    ] {
        assert_eq!(prefs[field], kept, "Session Manager's {field} is kept: {prefs}");
    }
    assert_eq!(prefs["s3BucketName"], format!("assure-logs-{}-us-east-1", ids["logging"].as_str().unwrap()));
    let chan = during[1].iter().find(|(k, _)| k.starts_with("config/eu-west-1/channel/")).expect("a channel").1;
    assert!(chan["snsTopicARN"].as_str().is_some_and(|t| t.ends_with(":config-changes")), "SNS topic kept: {chan}");
    assert_eq!(chan["configSnapshotDeliveryProperties"]["deliveryFrequency"], "Six_Hours", "frequency kept: {chan}");
    assert_eq!(during[3].get(linked), before[3].get(linked), "the service-linked recorder is left alone");
    assert!(during[2].contains_key(&format!("organizations/scp/team-guardrail-{}", accounts[2])), "own SCP stays");
    assert_eq!(
        during[2].get("cloudwatch/us-east-1/alarm/team-unauthorized-calls"),
        before[2].get("cloudwatch/us-east-1/alarm/team-unauthorized-calls"),
        "the account's own alarm is left as it was"
    );
    // A suppression rule archives findings before the administrator's export sees them: it stays,
    // with its criteria, as a saved filter (NOOP); rollback makes it suppress again (compared below).
    let mut filter = before[1]["guardduty/eu-west-1/detector/filter/suppress-dev"].clone();
    assert_eq!(filter["Action"], "ARCHIVE", "{filter}");
    filter["Action"] = "NOOP".into();
    assert_eq!(
        during[1]["guardduty/eu-west-1/detector/filter/suppress-dev"], filter,
        "GuardDuty filters kept, none suppressing"
    );
    // The account's own trails are retired: no trail of its own but assure's is left for scanners to
    // flag. The organization's trail is the management account's, untouched and the same in each.
    let org_trail = "cloudtrail/us-east-1/trail/org-audit";
    for (i, snap) in during.iter().enumerate() {
        let trails: Vec<&String> =
            snap.keys().filter(|k| k.starts_with("cloudtrail/") && k.matches('/').count() == 3).collect();
        assert_eq!(trails, vec!["cloudtrail/us-east-1/trail/assure-trail", org_trail], "account {i}'s trails");
        assert_eq!(snap.get(org_trail), before[i].get(org_trail), "account {i}: the organization trail");
        assert_eq!(snap[&format!("{org_trail}/logging")], true, "account {i}: the organization trail logs");
    }

    // Roll each back; then the account is what it was, except what the report says is not.
    for (i, account) in accounts.iter().enumerate() {
        let (code, out, err) = cloud.run(&["--output", "json", "runs", "rollback", &format!("matrix-{i}")]);
        assert_eq!(code, 0, "rollback of {:?}:\n{out}\n{err}", MATRIX[i]);
        let report: Value = serde_json::from_str(&out).expect("rollback JSON");
        let not_restorable: Vec<&str> =
            report["notRestorable"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let after = snapshot(&cloud, &mgmt, account);
        let mut unexplained = Vec::new();
        for path in differences(&before[i], &after) {
            let said = explanation(&path).is_some_and(|(what, why)| {
                not_restorable.iter().any(|l| l.starts_with(&what) && why.iter().any(|w| l.contains(w)))
            });
            if !said {
                unexplained.push(format!(
                    "{path}:\n  before: {}\n  after:  {}",
                    before[i].get(&path).map_or("(none)".into(), Value::to_string),
                    after.get(&path).map_or("(none)".into(), Value::to_string)
                ));
            }
        }
        assert!(
            unexplained.is_empty(),
            "{:?}: rolled back, the account differs where the report does not say so (not restorable: {not_restorable:#?}):\n{}",
            MATRIX[i],
            unexplained.join("\n")
        );
        eprintln!("{:?}: restored {:#?}\nnot restorable {not_restorable:#?}", MATRIX[i], report["restored"]);
        if MATRIX[i].contains(&"guardduty-member-of-this-organization") {
            // A member of the security account before the run is one after it, and no loss is reported.
            let security = ids["security"].as_str().unwrap();
            assert!(
                !not_restorable.iter().any(|l| l.starts_with("guardduty us-east-1") && l.contains(security)),
                "{not_restorable:?}"
            );
            assert_eq!(after["guardduty/us-east-1/detector/administrator"], security);
        }
    }
}

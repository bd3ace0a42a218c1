//! The fleet end to end: every onboarded account verified on the pipeline's schedule (the local
//! cloud fires the scheduled rule as EventBridge does), drift sent as an event and, by policy,
//! repaired; the baseline's version recorded per account, the accounts behind upgraded; an account
//! offboarded.

use std::time::Duration;

use assure_core::controls::names::TRAIL;
use assure_e2e::{eventually_async, http, LocalCloud};
use serde_json::{json, Value};

/// The fleet as `assure fleet status --output json` shows it.
fn status(cloud: &LocalCloud, config: &str) -> Value {
    let (code, out, err) = cloud.run(&["--config", config, "fleet", "status", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn account<'a>(fleet: &'a Value, id: &str) -> &'a Value {
    fleet["accounts"].as_array().unwrap().iter().find(|a| a["account"] == id).unwrap_or_else(|| panic!("{id}: {fleet}"))
}

/// The pipeline's configuration file, with `extra` TOML at its end.
fn config(cloud: &LocalCloud, ids: &Value, name: &str, extra: &str) -> String {
    let text = format!(
        "regions = [\"us-east-1\"]\n\n[organization]\nlogging_account = \"{}\"\nsecurity_account = \"{}\"\n\n{extra}",
        ids["logging"].as_str().unwrap(),
        ids["security"].as_str().unwrap()
    );
    let path = cloud.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The drift events on the pipeline account's default bus, through a rule to a queue, as a
/// security team would subscribe to them.
struct Subscriber {
    sqs: aws_sdk_sqs::Client,
    url: String,
    seen: Vec<Value>,
}

impl Subscriber {
    async fn new(cloud: &LocalCloud) -> Subscriber {
        let conf = cloud.pipeline_config().await;
        let sqs = aws_sdk_sqs::Client::new(&conf);
        let url = sqs.create_queue().queue_name("drift").send().await.unwrap().queue_url().unwrap().to_owned();
        let arn = format!("arn:aws:sqs:us-east-1:{}:drift", cloud.pipeline_account());
        let rule = "assure-drift-to-queue";
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": arn,
            "Condition": {"ArnEquals": {"aws:SourceArn":
                format!("arn:aws:events:us-east-1:{}:rule/{rule}", cloud.pipeline_account())}}}]});
        sqs.set_queue_attributes()
            .queue_url(&url)
            .attributes(aws_sdk_sqs::types::QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .unwrap();
        let eb = aws_sdk_eventbridge::Client::new(&conf);
        let pattern = json!({"source": ["assure"], "detail-type": ["Assure Control Drift"]});
        eb.put_rule().name(rule).event_pattern(pattern.to_string()).send().await.unwrap();
        let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().unwrap();
        eb.put_targets().rule(rule).targets(target).send().await.unwrap();
        Subscriber { sqs, url, seen: vec![] }
    }

    /// Every event received so far.
    async fn received(&mut self) -> &[Value] {
        for body in drain(&self.sqs, &self.url).await {
            self.seen.push(serde_json::from_str(&body).unwrap());
        }
        &self.seen
    }
}

/// The messages a queue received since the last call, deleted once read: their bodies.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let got = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        if got.messages().is_empty() {
            return out;
        }
        for m in got.messages() {
            out.push(m.body().unwrap().to_owned());
            sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
}

/// The drift topic the pipeline deploys, as its subscribers read it: a queue subscribed to it by
/// the AWS CLI (an independent client must see the topic assure made), each notification's text.
struct Told {
    sqs: aws_sdk_sqs::Client,
    url: String,
    seen: Vec<String>,
}

impl Told {
    async fn new(cloud: &LocalCloud) -> Told {
        let conf = cloud.pipeline_config().await;
        let sqs = aws_sdk_sqs::Client::new(&conf);
        let url = sqs.create_queue().queue_name("drift-told").send().await.unwrap().queue_url().unwrap().to_owned();
        let (queue, topic) = (
            format!("arn:aws:sqs:us-east-1:{}:drift-told", cloud.pipeline_account()),
            format!("arn:aws:sns:us-east-1:{}:assure-drift", cloud.pipeline_account()),
        );
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": queue,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic}}}]});
        sqs.set_queue_attributes()
            .queue_url(&url)
            .attributes(aws_sdk_sqs::types::QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .unwrap();
        let admin = super::iam::credentials(&conf).await;
        let args = ["sns", "subscribe", "--topic-arn", &topic, "--protocol", "sqs", "--notification-endpoint", &queue];
        super::iam::cli_ok(cloud, &admin, &args);
        Told { sqs, url, seen: vec![] }
    }

    /// Every notification's text received so far.
    async fn received(&mut self) -> &[String] {
        for body in drain(&self.sqs, &self.url).await {
            let notification: Value = serde_json::from_str(&body).unwrap();
            self.seen.push(notification["Message"].as_str().unwrap().to_owned());
        }
        &self.seen
    }
}

/// SNS's own count of the drift topic's notifications delivered (AWS/SNS), every subscriber's.
async fn drift_deliveries(cloud: &LocalCloud) -> f64 {
    let cw = aws_sdk_cloudwatch::Client::new(&cloud.pipeline_config().await);
    let now = std::time::SystemTime::now();
    let out = cw
        .get_metric_statistics()
        .namespace("AWS/SNS")
        .metric_name("NumberOfNotificationsDelivered")
        .dimensions(aws_sdk_cloudwatch::types::Dimension::builder().name("TopicName").value("assure-drift").build())
        .start_time((now - Duration::from_secs(3600)).into())
        .end_time((now + Duration::from_secs(60)).into())
        .period(7200)
        .statistics(aws_sdk_cloudwatch::types::Statistic::Sum)
        .send()
        .await
        .unwrap();
    out.datapoints().iter().filter_map(|d| d.sum()).sum()
}

/// Fires the pipeline's schedule now, as if a day had passed, and waits for the watch it starts.
async fn a_day_passes(cloud: &LocalCloud) -> String {
    let sfn = aws_sdk_sfn::Client::new(&cloud.pipeline_config().await);
    let machine = format!("arn:aws:states:us-east-1:{}:stateMachine:assure-watch", cloud.pipeline_account());
    let before = sfn.list_executions().state_machine_arn(&machine).send().await.unwrap().executions().len();
    let body = json!({"account": cloud.pipeline_account(), "region": "us-east-1", "rule": "assure-watch"});
    let fired: Value =
        serde_json::from_str(&http(&cloud.endpoint, "POST", "/assure-api/schedules", &body.to_string())).unwrap();
    assert!(fired["fired"].as_str().is_some_and(|a| a.ends_with(":rule/assure-watch")), "{fired}");
    eventually_async(Duration::from_secs(90), "the scheduled watch ended", || async {
        let list = sfn.list_executions().state_machine_arn(&machine).send().await.map_err(|e| e.to_string())?;
        let execs = list.executions();
        match execs.first() {
            Some(e) if execs.len() > before && e.status().as_str() != "RUNNING" => Ok(e.status().as_str().to_owned()),
            other => Err(format!("{} execution(s), newest {:?}", execs.len(), other.map(|e| e.status().clone()))),
        }
    })
    .await
}

async fn trail_logging(cloud: &LocalCloud, account: &str) -> bool {
    let ct = aws_sdk_cloudtrail::Client::new(&cloud.sdk_config_as(account, "us-east-1").await);
    ct.get_trail_status().name(TRAIL).send().await.unwrap().is_logging().unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fleet_is_watched_on_schedule_repaired_by_policy_upgraded_and_offboarded() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let (a, b) = (ids["external"][0].as_str().unwrap(), ids["external"][1].as_str().unwrap());
    let report = config(&cloud, &ids, "report.toml", "");
    let list = cloud.dir.path().join("accounts.txt");
    std::fs::write(&list, format!("{a}\n{b}\n")).unwrap();
    let (code, out, err) = cloud.run(&["--config", &report, "onboard", "--accounts-file", list.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");

    let fleet = status(&cloud, &report);
    let version = fleet["baseline"].as_str().unwrap().to_owned();
    assert!(version.starts_with(env!("CARGO_PKG_VERSION")), "{fleet}");
    for id in [a, b] {
        let s = account(&fleet, id);
        assert_eq!(
            (s["baseline"].as_str(), s["current"].as_bool(), s["holds"].as_bool()),
            (Some(version.as_str()), Some(true), Some(true)),
            "{s}"
        );
        assert!(s["lastChecked"].is_null(), "never checked yet: {s}");
    }

    // The schedule fires: every account checked, nothing drifted, no event. What every check
    // reads alike (the logging and security accounts' SCPs, each policy's content) is read once
    // for the whole watch: per account, its own SCPs and its organization.
    let mut subscriber = Subscriber::new(&cloud).await;
    let mut told = Told::new(&cloud).await;
    cloud.reset_calls();
    assert_eq!(a_day_passes(&cloud).await, "SUCCEEDED");
    let organizations =
        cloud.calls().iter().filter(|c| c["step"] == "watch" && c["service"] == "Organizations").count();
    assert!(organizations <= 2 * 2 + 6, "{organizations} Organizations calls to check 2 accounts");
    let fleet = status(&cloud, &report);
    assert!(account(&fleet, a)["lastChecked"].is_string() && account(&fleet, a)["holds"] == true, "{fleet}");
    assert!(subscriber.received().await.is_empty());

    // Someone switches account a's trail off (the member role, which the SCPs exempt). The next
    // scheduled verify sees it, names it in an event, and with `report` changes nothing.
    let ct = aws_sdk_cloudtrail::Client::new(&cloud.sdk_config_as(a, "us-east-1").await);
    ct.stop_logging().name(TRAIL).send().await.unwrap();
    // EventBridge refusing the event fails the watch, and nothing is recorded as told: the next
    // watch sends it.
    cloud.faults(json!([{"service": "events", "operation": "PutEvents", "error": "AccessDenied", "rate": 1.0,
                         "count": 1, "caller": "assure-step-watch"}]));
    assert_eq!(a_day_passes(&cloud).await, "FAILED");
    cloud.faults(json!([]));
    assert!(subscriber.received().await.is_empty());
    assert_eq!(a_day_passes(&cloud).await, "SUCCEEDED");
    let events = subscriber.received().await.to_vec();
    assert!(!events.is_empty(), "a drift event");
    for e in &events {
        assert_eq!(
            (e["source"].as_str(), e["detail-type"].as_str()),
            (Some("assure"), Some("Assure Control Drift")),
            "{e}"
        );
        assert_eq!(e["detail"]["account"], a, "only account a drifted: {e}");
        assert_eq!(e["detail"]["region"], "us-east-1");
        assert_eq!(e["detail"]["onDrift"], "report");
        assert_eq!(e["detail"]["baseline"], version.as_str());
    }
    let trail =
        events.iter().find(|e| e["detail"]["control"] == "cloudtrail.all-regions").expect("the trail's control");
    assert_eq!(trail["detail"]["cis"], "4.1", "{trail}");
    // Each event is told to the drift topic's subscribers in a sentence of its own.
    let texts = told.received().await.to_vec();
    assert_eq!(texts.len(), events.len(), "one notification an event: {texts:?}");
    let sentence = texts.iter().find(|t| t.contains("cloudtrail.all-regions")).expect("the trail's notification");
    for part in [format!("assure: account {a} drifted"), "in us-east-1 (CIS 4.1)".into(), "Reported only".into()] {
        assert!(sentence.contains(&part), "{part}: {sentence}");
    }
    let fleet = status(&cloud, &report);
    let s = account(&fleet, a);
    assert_eq!(s["holds"], false, "{s}");
    assert!(s["failing"].as_array().unwrap().iter().any(|f| f["control"] == "cloudtrail.all-regions"), "{s}");
    assert!(s["repair"].is_null(), "report changes nothing: {s}");
    assert_eq!(account(&fleet, b)["holds"], true);
    assert!(!trail_logging(&cloud, a).await, "report leaves the drift as it is");

    // The fleet report: account a first (worst first), its CloudTrail cell red, b's green; the
    // JSON reads back into the report it was written from.
    let page = cloud.dir.path().join("fleet.html");
    let (code, _, err) = cloud.run(&["--config", &report, "fleet", "report", "--out", page.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let rendered = assure_e2e::render(&page, 1400, 900);
    let matrix = rendered.dom.split("id=\"matrix\"").nth(1).expect("the matrix").split("</table>").next().unwrap();
    let (at_a, at_b) = (matrix.find(a).expect("account a's row"), matrix.find(b).expect("account b's row"));
    assert!(at_a < at_b, "the account that fails comes first: {matrix}");
    assert!(matrix[at_a..at_b].contains("class=\"fails\" title=\"cloudtrail.all-regions"), "{matrix}");
    assert!(!matrix[at_b..].contains("class=\"fails\""), "{matrix}");
    assert!(rendered.count([207, 34, 46]) > 500, "a red cell: {} pixels", rendered.count([207, 34, 46]));
    assert!(rendered.count([45, 164, 78]) > 5_000, "green cells: {} pixels", rendered.count([45, 164, 78]));
    let (code, out, err) = cloud.run(&["--config", &report, "fleet", "report", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let parsed: assure_core::audit::fleet::FleetReport = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), doc, "the JSON round-trips");
    assert_eq!(parsed.accounts[0].drift.len(), events.len(), "the report's drift is the events sent");

    // The same drift a day later is not news: no second event.
    assert_eq!(a_day_passes(&cloud).await, "SUCCEEDED");
    assert!(subscriber.received().await.len() == events.len(), "one drift, one event");
    assert_eq!(told.received().await.len(), events.len(), "and one notification");

    // With `repair`, a check now starts a run of account a, which puts the trail back; the repair
    // is in the account's history.
    let repair = config(&cloud, &ids, "repair.toml", "[fleet]\non_drift = \"repair\"\nmax_repairs_per_day = 5\n");
    let (code, out, err) = cloud.run(&["--config", &repair, "deploy", "--settings-only"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = cloud.run(&["--config", &repair, "fleet", "check", "--output", "json"]);
    assert_eq!(code, 1, "account a does not hold at the check: {out}\n{err}");
    let checked: Value = serde_json::from_str(&out).unwrap();
    let run = checked["checks"].as_array().unwrap().iter().find(|c| c["account"] == a).unwrap()["repair"]
        .as_str()
        .unwrap_or_else(|| panic!("a repair run: {checked}"))
        .to_owned();
    assert!(run.starts_with(&format!("repair-{a}-")), "{run}");
    eventually_async(Duration::from_secs(120), "the repair run made the trail log again", || async {
        let (code, out, err) = cloud.run(&["verify", a]);
        if code == 0 && trail_logging(&cloud, a).await {
            Ok(())
        } else {
            Err(format!("{out}\n{err}"))
        }
    })
    .await;
    let (code, out, _) = cloud.run(&["runs", "list", "--account", a, "--output", "json"]);
    assert_eq!(code, 0);
    assert!(out.contains(&run), "the repair is in the account's history: {out}");

    // Repairs are bounded per day: with one a day, the next drift is reported, not repaired.
    let bounded = config(&cloud, &ids, "bounded.toml", "[fleet]\non_drift = \"repair\"\nmax_repairs_per_day = 1\n");
    let (code, out, err) = cloud.run(&["--config", &bounded, "deploy", "--settings-only"]);
    assert_eq!(code, 0, "{out}\n{err}");
    eventually_async(Duration::from_secs(60), "the repair run ended", || async {
        let (_, out, _) = cloud.run(&["runs", "list", "--account", a, "--status", "running", "--output", "json"]);
        if out.contains(&run) {
            Err(out)
        } else {
            Ok(())
        }
    })
    .await;
    ct.stop_logging().name(TRAIL).send().await.unwrap();
    let (code, out, err) = cloud.run(&["--config", &bounded, "fleet", "check", "--output", "json"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let checked: Value = serde_json::from_str(&out).unwrap();
    let check = checked["checks"].as_array().unwrap().iter().find(|c| c["account"] == a).unwrap();
    assert!(check["repair"].is_null(), "{check}");
    assert!(check["notRepaired"].as_str().is_some_and(|w| w.contains("fleet.max_repairs_per_day")), "{check}");
    assert!(!trail_logging(&cloud, a).await, "not repaired past the bound");

    // The baseline changes (notifications for the alarms): every account is behind; one upgrade
    // brings both to the new version (account a's trail logging again), a second does nothing.
    // Deployed, the same endpoint is told of drift: subscribed to the drift topic, and never shown
    // in the stack's parameters.
    let notify = config(
        &cloud,
        &ids,
        "notify.toml",
        "[notifications]\nprotocol = \"email\"\nendpoint = \"secops@example.com\"\n",
    );
    let (code, out, err) = cloud.run(&["--config", &notify, "deploy"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let admin = super::iam::credentials(&cloud.pipeline_config().await).await;
    let topic = format!("arn:aws:sns:us-east-1:{}:assure-drift", cloud.pipeline_account());
    let subs = super::iam::cli_ok(&cloud, &admin, &["sns", "list-subscriptions-by-topic", "--topic-arn", &topic]);
    assert!(subs.contains("\"Endpoint\": \"secops@example.com\""), "{subs}");
    let stack = super::iam::cli_ok(&cloud, &admin, &["cloudformation", "describe-stacks", "--stack-name", "assure"]);
    assert!(!stack.contains("secops@example.com") && stack.contains("\"ParameterValue\": \"****\""), "{stack}");
    let fleet = status(&cloud, &notify);
    let new_version = fleet["baseline"].as_str().unwrap().to_owned();
    assert_ne!(new_version, version);
    for id in [a, b] {
        assert_eq!(account(&fleet, id)["current"], false, "behind after the change: {fleet}");
    }
    let (code, out, err) = cloud.run(&["--config", &notify, "fleet", "upgrade"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(trail_logging(&cloud, a).await, "the upgrade's run repaired the drift too");
    let fleet = status(&cloud, &notify);
    for id in [a, b] {
        let s = account(&fleet, id);
        assert_eq!((s["current"].as_bool(), s["baseline"].as_str()), (Some(true), Some(new_version.as_str())), "{s}");
    }
    let (code, out, err) = cloud.run(&["--config", &notify, "fleet", "upgrade"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("nothing to upgrade"), "{out}");

    // The next drift reaches the email subscriber too, once its owner has confirmed the
    // subscription (on AWS, from the message SNS sends it; the local cloud's subscriptions are
    // confirmed as they are made): SNS counts a delivery to each of the two.
    let (delivered, before) = (drift_deliveries(&cloud).await, told.received().await.len());
    ct.stop_logging().name(TRAIL).send().await.unwrap();
    assert_eq!(a_day_passes(&cloud).await, "SUCCEEDED");
    let new = told.received().await.len() - before;
    assert!(new >= 1, "the trail's drift told");
    assert_eq!(drift_deliveries(&cloud).await - delivered, 2.0 * new as f64, "to the queue and the email");

    // A compensation that fails keeps b in the fleet (exit 1); offboarding it again finishes.
    cloud.faults(json!([{"service": "cloudtrail", "operation": "DeleteTrail", "error": "AccessDenied", "rate": 1.0,
                         "count": 1, "caller": b}]));
    let (code, out, err) = cloud.run(&["--config", &notify, "offboard", b]);
    cloud.faults(json!([]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("compensation(s) failed; the account stays in the fleet"), "{err}");
    let fleet = status(&cloud, &notify);
    assert!(fleet["accounts"].as_array().unwrap().iter().any(|s| s["account"] == b), "still in the fleet: {fleet}");

    // Offboarding b rolls its runs back (the assure trail goes) and takes it out of the fleet.
    let (code, out, err) = cloud.run(&["--config", &notify, "offboard", b]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("account {b} offboarded")), "{out}");
    let fleet = status(&cloud, &notify);
    assert!(fleet["accounts"].as_array().unwrap().iter().all(|s| s["account"] != b), "{fleet}");
    let ct = aws_sdk_cloudtrail::Client::new(&cloud.sdk_config_as(b, "us-east-1").await);
    let trails = ct.describe_trails().send().await.unwrap();
    assert!(trails.trail_list().iter().all(|t| t.name() != Some(TRAIL)), "the assure trail is gone: {trails:?}");
    let (code, out, err) = cloud.run(&["--config", &notify, "offboard", b]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("nothing to do"), "offboarded already: {out}");
    let (code, _, err) = cloud.run(&["--config", &notify, "offboard", ids["logging"].as_str().unwrap()]);
    assert_eq!(code, 2, "never onboarded: {err}");
    assert!(err.contains("not onboarded"), "{err}");
}

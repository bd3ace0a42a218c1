"""The brownfield matrix's other half: pre-existing setups made, and accounts read, by a client that
is not assure's (botocore, as the AWS CLI ships it), so the matrix compares the account with what
an independent reader sees, not with what assure believes it wrote.

    python brownfield.py setup    --endpoint URL --management ID --account ID --case NAME [--security ID]
    python brownfield.py snapshot --endpoint URL --management ID --account ID --regions R1,R2

`snapshot` prints one JSON object: a flat map from a resource path ("cloudtrail/eu-west-1/trail/x")
to what the service answers for it, every field except the clocks (times of the last delivery,
creation, update), which a rollback cannot and need not restore.
Run it with the AWS CLI's Python (`cargo xtask test` installs it; tests/tests/all/brownfield.rs).
"""

import argparse
import json
import sys
import time
import urllib.request

try:
    import awscli.botocore.session  # noqa: F401  the AWS CLI's own botocore, which it registers as `botocore`
except ImportError:  # a botocore installed on its own
    pass
from botocore.exceptions import ClientError
from botocore.session import get_session

ADMIN_ROLE = "OrganizationAccountAccessRole"
HOME = "us-east-1"
OTHER = "eu-west-1"
# Names of what assure creates: the snapshot reads the account's own setup and assure's leftovers
# alike; the matrix decides which differences are allowed.
SESSION = get_session()


class Account:
    def __init__(self, endpoint: str, management: str, account: str):
        self.endpoint = endpoint
        self.id = account
        self.management = management
        base = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
        if account == management:
            self.keys = base
        else:
            sts = SESSION.create_client("sts", region_name=HOME, endpoint_url=endpoint, **base)
            c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ADMIN_ROLE}",
                                RoleSessionName="brownfield")["Credentials"]
            self.keys = dict(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                             aws_session_token=c["SessionToken"])

    def client(self, service: str, region: str = HOME):
        return SESSION.create_client(service, region_name=region, endpoint_url=self.endpoint, **self.keys)


def bucket_for_trail(acct: Account, bucket: str, trail_arns: list[str]) -> None:
    """A bucket of the account's own with CloudTrail's bucket policy
    (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html)."""
    s3 = acct.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringEquals": {"aws:SourceArn": trail_arns}}},
        {"Sid": "Write", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/audit/AWSLogs/{acct.id}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control",
                                        "aws:SourceArn": trail_arns}}}]}))


def trail(acct: Account, region: str, name: str, multi_region: bool, selectors: str | None = None,
          validation: bool = False, logging: bool = True, tags: dict | None = None,
          organization: bool = False) -> None:
    arn = f"arn:aws:cloudtrail:{region}:{acct.id}:trail/{name}"
    bucket = f"{name}-{acct.id}"
    bucket_for_trail(acct, bucket, [arn])
    ct = acct.client("cloudtrail", region)
    ct.create_trail(Name=name, S3BucketName=bucket, S3KeyPrefix="audit", IsMultiRegionTrail=multi_region,
                    IncludeGlobalServiceEvents=multi_region, EnableLogFileValidation=validation,
                    IsOrganizationTrail=organization,
                    TagsList=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
    if selectors:
        ct.put_event_selectors(TrailName=name, EventSelectors=[
            {"ReadWriteType": selectors, "IncludeManagementEvents": True}])
    if logging:
        ct.start_logging(Name=name)


def session_preferences(acct: Account, region: str, inputs: dict) -> None:
    """Session Manager preferences: a new version of SSM-SessionManagerRunShell made the default."""
    ssm = acct.client("ssm", region)
    content = json.dumps({"schemaVersion": "1.0", "description": "the team's session preferences",
                          "sessionType": "Standard_Stream", "inputs": inputs})
    try:
        ssm.create_document(Name="SSM-SessionManagerRunShell", DocumentType="Session", DocumentFormat="JSON",
                            Content=content)
    except ClientError as e:
        if e.response["Error"]["Code"] != "DocumentAlreadyExists":
            raise
        v = ssm.update_document(Name="SSM-SessionManagerRunShell", DocumentVersion="$LATEST",
                                DocumentFormat="JSON", Content=content)["DocumentDescription"]["DocumentVersion"]
        ssm.update_document_default_version(Name="SSM-SessionManagerRunShell", DocumentVersion=v)


def setup(acct: Account, case: str, security: str | None) -> None:
    if case == "trail-organization":
        # This organization's trail, made by the management account: every member sees it, none may
        # change it. Set up first: it is in every account's before-snapshot.
        mgmt = Account(acct.endpoint, acct.management, acct.management)
        mgmt.client("organizations").enable_aws_service_access(ServicePrincipal="cloudtrail.amazonaws.com")
        if not any(t["Name"] == "org-audit" for t in mgmt.client("cloudtrail").describe_trails()["trailList"]):
            # CloudTrail learns of trusted access a moment after Organizations enabled it: the
            # local cloud's transition (its limits' transitionSeconds).
            with urllib.request.urlopen(f"{acct.endpoint}/assure-api/limits", timeout=30) as r:
                time.sleep(float(json.load(r)["transitionSeconds"]) + 0.2)
            trail(mgmt, HOME, "org-audit", multi_region=True, validation=True, organization=True)
    elif case == "guardduty-member-of-this-organization":
        # In the home region the account is already a member of this organization's GuardDuty
        # delegated administrator, the security account, instead of the foreign one.
        gd = acct.client("guardduty", HOME)
        det = gd.list_detectors()["DetectorIds"][0]
        if gd.get_administrator_account(DetectorId=det).get("Administrator"):
            gd.disassociate_from_administrator_account(DetectorId=det)
        mgmt = Account(acct.endpoint, acct.management, acct.management)
        accounts = mgmt.client("organizations").list_accounts()["Accounts"]
        security = security or next(a["Id"] for a in accounts if a["Name"] == "security")
        admins = mgmt.client("guardduty", HOME).list_organization_admin_accounts()["AdminAccounts"]
        if not admins:
            mgmt.client("guardduty", HOME).enable_organization_admin_account(AdminAccountId=security)
        sec = Account(acct.endpoint, acct.management, security).client("guardduty", HOME)
        sec_det = (sec.list_detectors()["DetectorIds"] or [None])[0] or sec.create_detector(Enable=True)["DetectorId"]
        sec.create_members(DetectorId=sec_det, AccountDetails=[{"AccountId": acct.id, "Email": f"{acct.id}@example.com"}])
    elif case == "trail-single-region-elsewhere":
        # A single-region trail homed in another region than the run's home, logging, write events only.
        trail(acct, OTHER, "eu-audit", multi_region=False, selectors="WriteOnly", tags={"team": "platform"})
        # With CloudTrail Insights on API call rates.
        acct.client("cloudtrail", OTHER).put_insight_selectors(
            TrailName="eu-audit", InsightSelectors=[{"InsightType": "ApiCallRateInsight"}])
    elif case == "trail-multi-region-elsewhere":
        # A multi-region trail homed in another region, with log file validation.
        trail(acct, OTHER, "global-audit", multi_region=True, validation=True, tags={"owner": "secops"})
    elif case == "trail-stopped-in-home":
        # A second trail in the home region that the account had already stopped.
        trail(acct, HOME, "old-audit", multi_region=False, logging=False)
    elif case == "session-manager-full":
        # Preferences using every setting the baseline does not fix: CloudWatch Logs streaming,
        # timeouts, run-as, shell profiles.
        logs = acct.client("logs", OTHER)
        optional(lambda: logs.create_log_group(logGroupName="/team/sessions"), "ResourceAlreadyExistsException")
        session_preferences(acct, OTHER, {
            "s3BucketName": "", "s3KeyPrefix": "", "s3EncryptionEnabled": False,
            "cloudWatchLogGroupName": "/team/sessions", "cloudWatchEncryptionEnabled": False,
            "cloudWatchStreamingEnabled": True, "kmsKeyId": "", "runAsEnabled": True, "runAsDefaultUser": "ops",
            "idleSessionTimeout": "15", "maxSessionDuration": "120",
            "shellProfile": {"windows": "", "linux": "exec bash -l"}})
    elif case == "access-analyzer-own":
        # The account's own analyzer, with an archive rule, in a region other than home.
        aa = acct.client("accessanalyzer", OTHER)
        aa.create_analyzer(analyzerName="team-analyzer", type="ACCOUNT", tags={"team": "platform"},
                           archiveRules=[{"ruleName": "ignore-internal",
                                          "filter": {"isPublic": {"eq": ["false"]}}}])
        # An account's own analyzer has long been ACTIVE: AWS makes a new one CREATING first
        # (API_AnalyzerSummary). Wait for it, bounded, so the snapshot is the settled account.
        deadline = time.monotonic() + 60
        while aa.get_analyzer(analyzerName="team-analyzer")["analyzer"]["status"] == "CREATING":
            if time.monotonic() > deadline:
                raise SystemExit("team-analyzer still CREATING after 60 s")
            time.sleep(0.25)
    elif case == "config-partial-recorder":
        # The seed's recorder narrowed to a few resource types and stopped; its channel with an SNS
        # topic and a key prefix.
        cfg = acct.client("config", OTHER)
        rec = cfg.describe_configuration_recorders()["ConfigurationRecorders"][0]
        rec["recordingGroup"] = {"allSupported": False, "includeGlobalResourceTypes": False,
                                 "resourceTypes": ["AWS::S3::Bucket", "AWS::IAM::Role"]}
        cfg.stop_configuration_recorder(ConfigurationRecorderName=rec["name"])
        cfg.put_configuration_recorder(ConfigurationRecorder=rec)
        topic = acct.client("sns", OTHER).create_topic(Name="config-changes")["TopicArn"]
        chan = cfg.describe_delivery_channels()["DeliveryChannels"][0]
        chan.update({"snsTopicARN": topic, "s3KeyPrefix": "config"})
        cfg.put_delivery_channel(DeliveryChannel=chan)
    elif case == "config-recorder-default-name-home":
        # The home region's recorder replaced by one named "default" (the console's name), recording
        # all supported types without global ones, with a channel of its own and no encryption.
        cfg = acct.client("config", HOME)
        for r in cfg.describe_configuration_recorders()["ConfigurationRecorders"]:
            cfg.stop_configuration_recorder(ConfigurationRecorderName=r["name"])
            for c in cfg.describe_delivery_channels()["DeliveryChannels"]:
                cfg.delete_delivery_channel(DeliveryChannelName=c["name"])
            cfg.delete_configuration_recorder(ConfigurationRecorderName=r["name"])
        cfg.put_configuration_recorder(ConfigurationRecorder={
            "name": "default", "roleARN": f"arn:aws:iam::{acct.id}:role/legacy-config-role",
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": False}})
        cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": f"legacy-config-{acct.id}"})
        cfg.start_configuration_recorder(ConfigurationRecorderName="default")
    elif case == "config-service-linked-recorder":
        # A service-linked recorder (the kind Security Hub creates) next to the account's own.
        acct.client("config", OTHER).put_service_linked_configuration_recorder(
            ServicePrincipal="securityhub.amazonaws.com")
    elif case == "guardduty-filters-features":
        # The detector with a suppression filter, a feature turned off and hourly publishing.
        gd = acct.client("guardduty", OTHER)
        det = gd.list_detectors()["DetectorIds"][0]
        gd.create_filter(DetectorId=det, Name="suppress-dev", Action="ARCHIVE", Rank=1,
                         FindingCriteria={"Criterion": {"resource.instanceDetails.tags.value": {"Eq": ["dev"]}}})
        gd.update_detector(DetectorId=det, FindingPublishingFrequency="ONE_HOUR",
                           Features=[{"Name": "S3_DATA_EVENTS", "Status": "DISABLED"}])
    elif case == "guardduty-no-detector":
        # No detector in the other region (the account never enabled GuardDuty there).
        gd = acct.client("guardduty", OTHER)
        for det in gd.list_detectors()["DetectorIds"]:
            if gd.get_administrator_account(DetectorId=det).get("Administrator"):
                gd.disassociate_from_administrator_account(DetectorId=det)
            gd.delete_detector(DetectorId=det)
    elif case == "cis-alarm-other-name":
        # The account's own CIS alarm (unauthorized API calls) on its own log group, under its own name.
        logs = acct.client("logs", HOME)
        optional(lambda: logs.create_log_group(logGroupName="/team/cloudtrail"), "ResourceAlreadyExistsException")
        logs.put_metric_filter(
            logGroupName="/team/cloudtrail", filterName="unauthorized",
            filterPattern='{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }',
            metricTransformations=[{"metricName": "Unauthorized", "metricNamespace": "Team", "metricValue": "1"}])
        acct.client("cloudwatch", HOME).put_metric_alarm(
            AlarmName="team-unauthorized-calls", MetricName="Unauthorized", Namespace="Team", Statistic="Sum",
            Period=300, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    elif case == "scp-existing":
        # The organization already attaches a policy of its own to the account.
        mgmt = Account(acct.endpoint, acct.management, acct.management)
        org = mgmt.client("organizations")
        content = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"}]})
        pid = org.create_policy(Name=f"team-guardrail-{acct.id}", Description="the organization's own",
                                Type="SERVICE_CONTROL_POLICY", Content=content)["Policy"]["PolicySummary"]["Id"]
        org.attach_policy(PolicyId=pid, TargetId=acct.id)
    else:
        sys.exit(f"unknown case {case}")


def clean(value):
    """The answer without its clocks and request metadata."""
    drop = {"ResponseMetadata", "CreatedAt", "UpdatedAt", "createdAt", "updatedAt", "StartLoggingTime",
            "StopLoggingTime", "LatestDeliveryTime", "LatestNotificationTime", "LatestDigestDeliveryTime",
            "TimeLoggingStarted", "TimeLoggingStopped", "LatestDeliveryAttemptTime",
            "LatestNotificationAttemptTime", "LatestNotificationAttemptSucceeded",
            "LatestDeliveryAttemptSucceeded", "LatestDigestDeliveryError", "LatestDeliveryError",
            "LatestCloudWatchLogsDeliveryTime", "LatestCloudWatchLogsDeliveryError", "lastStartTime",
            "lastStopTime", "lastStatusChangeTime", "lastResourceAnalyzed", "lastResourceAnalyzedAt",
            "CreatedDate", "StateUpdatedTimestamp", "AlarmConfigurationUpdatedTimestamp", "StateReason",
            "StateReasonData", "StateTransitionedTimestamp", "StateValue", "creationTime", "storedBytes"}
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def optional(call, *codes):
    try:
        return call()
    except ClientError as e:
        if e.response["Error"]["Code"] in codes:
            return None
        raise


def snapshot(acct: Account, regions: list[str]) -> dict:
    out: dict = {}
    for region in regions:
        ct = acct.client("cloudtrail", region)
        # Every trail the account sees, once, under its home region: its own, and its organization's
        # (which a member lists only as a shadow trail).
        for t in ct.describe_trails(includeShadowTrails=True)["trailList"]:
            if t["HomeRegion"] != region:
                continue
            name = t["Name"]
            out[f"cloudtrail/{region}/trail/{name}"] = clean(t)
            out[f"cloudtrail/{region}/trail/{name}/logging"] = ct.get_trail_status(Name=t["TrailARN"])["IsLogging"]
            out[f"cloudtrail/{region}/trail/{name}/selectors"] = clean(ct.get_event_selectors(TrailName=t["TrailARN"]))
            insights = optional(lambda: ct.get_insight_selectors(TrailName=t["TrailARN"]), "InsightNotEnabledException")
            out[f"cloudtrail/{region}/trail/{name}/insights"] = clean(insights) if insights else None
            tags = ct.list_tags(ResourceIdList=[t["TrailARN"]])["ResourceTagList"]
            out[f"cloudtrail/{region}/trail/{name}/tags"] = sorted(
                (x["Key"], x["Value"]) for r in tags for x in r.get("TagsList", []))
        cfg = acct.client("config", region)
        status = {s["name"]: s.get("recording") for s in
                  cfg.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]}
        for r in cfg.describe_configuration_recorders()["ConfigurationRecorders"]:
            out[f"config/{region}/recorder/{r['name']}"] = clean(r)
            out[f"config/{region}/recorder/{r['name']}/recording"] = status.get(r["name"])
        for c in cfg.describe_delivery_channels()["DeliveryChannels"]:
            out[f"config/{region}/channel/{c['name']}"] = clean(c)
        gd = acct.client("guardduty", region)
        for det in gd.list_detectors()["DetectorIds"]:
            d = clean(gd.get_detector(DetectorId=det))
            out[f"guardduty/{region}/detector"] = d
            admin = gd.get_administrator_account(DetectorId=det).get("Administrator")
            out[f"guardduty/{region}/detector/administrator"] = admin and admin.get("AccountId")
            for f in gd.list_filters(DetectorId=det)["FilterNames"]:
                out[f"guardduty/{region}/detector/filter/{f}"] = clean(gd.get_filter(DetectorId=det, FilterName=f))
            for p in gd.list_publishing_destinations(DetectorId=det)["Destinations"]:
                out[f"guardduty/{region}/detector/destination/{p['DestinationType']}"] = clean(
                    gd.describe_publishing_destination(DetectorId=det, DestinationId=p["DestinationId"]))
        aa = acct.client("accessanalyzer", region)
        for a in aa.list_analyzers()["analyzers"]:
            out[f"access-analyzer/{region}/analyzer/{a['name']}"] = clean(a)
            for rule in aa.list_archive_rules(analyzerName=a["name"])["archiveRules"]:
                out[f"access-analyzer/{region}/analyzer/{a['name']}/rule/{rule['ruleName']}"] = clean(rule)
        doc = optional(lambda: acct.client("ssm", region).get_document(Name="SSM-SessionManagerRunShell"),
                       "InvalidDocument")
        if doc:
            out[f"ssm/{region}/session-preferences"] = json.loads(doc["Content"])
        for a in acct.client("cloudwatch", region).describe_alarms()["MetricAlarms"]:
            out[f"cloudwatch/{region}/alarm/{a['AlarmName']}"] = clean(a)
        logs = acct.client("logs", region)
        for g in logs.describe_log_groups()["logGroups"]:
            out[f"logs/{region}/group/{g['logGroupName']}"] = clean(g)
            for f in logs.describe_metric_filters(logGroupName=g["logGroupName"])["metricFilters"]:
                out[f"logs/{region}/group/{g['logGroupName']}/filter/{f['filterName']}"] = clean(f)
        for t in acct.client("sns", region).list_topics()["Topics"]:
            out[f"sns/{region}/topic/{t['TopicArn'].split(':')[-1]}"] = True
    iam = acct.client("iam")
    for r in iam.list_roles()["Roles"]:
        out[f"iam/role/{r['RoleName']}"] = {"path": r["Path"], "trust": r["AssumeRolePolicyDocument"]}
    org = Account(acct.endpoint, acct.management, acct.management).client("organizations")
    for p in org.list_policies_for_target(TargetId=acct.id, Filter="SERVICE_CONTROL_POLICY")["Policies"]:
        out[f"organizations/scp/{p['Name']}"] = True
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["setup", "snapshot"])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--management", required=True)
    p.add_argument("--account", required=True)
    p.add_argument("--case")
    p.add_argument("--security")
    p.add_argument("--regions", default=f"{HOME},{OTHER}")
    a = p.parse_args()
    acct = Account(a.endpoint, a.management, a.account)
    if a.action == "setup":
        setup(acct, a.case, a.security)
    else:
        print(json.dumps(snapshot(acct, a.regions.split(",")), indent=1, sort_keys=True, default=str))


if __name__ == "__main__":
    main()

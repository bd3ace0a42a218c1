"""Services that act on their own, as their service principal, through the same authorization as
every request: Config delivering a snapshot, GuardDuty exporting findings, CloudWatch publishing an
alarm's notification and SNS delivering it, Config's organization aggregator reading the organization.

Each acts after the local cloud's delay (deliver.later, deliver.delay(): core.TRANSITION, the
delay analyzers and Firehose streams wait), and only where the policies AWS consults let it: the bucket
and key policies for a service principal writing to S3 (rules.delivery_refusal, with the context keys
each service documents sending: rules.DELIVERY_CONTEXT_KEYS), the recorder's role (authz.authorize) for
Config's first attempt, the topic's and the key's policies for CloudWatch, the queue's and its key's for
SNS, the aggregator role's trust and permissions for Config. What happened is what the service then
reports: DescribeDeliveryChannelStatus, DescribePublishingDestination, DescribeAlarmHistory,
DescribeConfigurationAggregatorSourcesStatus, SNS's CloudWatch metrics.

Operations answered here (moto lacks them):
- Config: DeliverConfigSnapshot, DescribeConfigurationAggregatorSourcesStatus; DescribeDeliveryChannelStatus's
  configSnapshotDeliveryInfo.
- GuardDuty: CreateSampleFindings, ListFindings, GetFindings (routed by the extension like its other
  GuardDuty operations).
- CloudWatch: DescribeAlarmHistory (StateUpdate and Action items).

`patch()` installs it all; the extension's patch_moto calls it.
"""

from __future__ import annotations

import datetime
import functools
import gzip
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

from assure_local import authz, aws_request, core, deliver, iam, policies, principals, resources, rules
from assure_local.services import guardduty

PATCHED = {"done": False}


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def epoch_ms(when: datetime.datetime | None = None) -> int:
    return int((when or utcnow()).timestamp() * 1000)


def iso_ms(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def later(fn: Callable[[], Any]) -> None:
    """`fn` after the delivery delay, on the delivery thread, holding the extension's LOCK."""
    deliver.later(deliver.delay(), fn)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def mine(fn: Any) -> bool:
    return bool(getattr(fn, "_deliver_services", False))


def install(owner: Any, name: str, fn: Callable) -> None:
    """`owner.name = fn`, marked as this module's, so that patching again (a second patch_moto in one
    process) neither wraps this module's functions twice nor loses them."""
    fn._deliver_services = True  # type: ignore[attr-defined]
    setattr(owner, name, fn)


def service_allows(doc: Any, service: str, action: str, resource: str, ctx: dict) -> bool:
    """Whether the resource-based policy `doc` lets the service principal `service` do `action` on
    `resource` with the context `ctx`: an allow naming it, and no deny."""
    principal = iam.Principal(kind="service", account="", arn=service)
    direct, _, deny = iam.resource_effects(doc, principal, action, resource, ctx)
    return direct and not deny


def service_context(service: str, account: str, source_arn: str | None) -> dict:
    """What a service principal's request carries: TLS, aws:PrincipalIsAWSService, and the source keys
    the service documents (rules.delivery_context)."""
    return {"aws:SecureTransport": "true", "aws:PrincipalIsAWSService": "true",
            **rules.delivery_context(service, account, source_arn)}


# ---------------------------------------------------------------------------------------------------
# AWS Config: DeliverConfigSnapshot
# (https://docs.aws.amazon.com/config/latest/APIReference/API_DeliverConfigSnapshot.html)

CONFIG = "config.amazonaws.com"
# (account, region, channel name) -> ConfigExportDeliveryInfo of the channel's snapshots
SNAPSHOTS: dict[tuple[str, str, str], dict] = {}


def snapshot_key(account: str, region: str, prefix: str | None, snapshot_id: str, when: datetime.datetime) -> str:
    """`[prefix/]AWSLogs/ACCOUNT/Config/REGION/YYYY/M/D/ConfigSnapshot/ACCOUNT_Config_REGION_ConfigSnapshot_
    YYYYMMDDTHHMMSSZ_ID.json.gz`, the day unpadded, as Config's snapshot notification names it
    ("s3ObjectKey": "AWSLogs/123456789012/Config/us-east-2/2016/9/27/ConfigSnapshot/123456789012_Config_us-east-2_
    ConfigSnapshot_20160927T183939Z_16da64e4-cb65-4846-b061-e6c3ba43cb96.json.gz":
    https://docs.aws.amazon.com/config/latest/developerguide/example-configuration-snapshot-notification.html)."""
    prefix = prefix.strip("/") + "/" if prefix and prefix.strip("/") else ""
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    return (f"{prefix}AWSLogs/{account}/Config/{region}/{when.year}/{when.month}/{when.day}/ConfigSnapshot/"
            f"{account}_Config_{region}_ConfigSnapshot_{stamp}_{snapshot_id}.json.gz")


def config_error(code: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(code, message)


def role_write_refusal(role_arn: str, service: str, region: str, bucket: str, key: str, kms_key_arn: str | None,
                       session: str) -> str | None:
    """Why a service writing `key` to `bucket` as the role `role_arn` (Config's recorder role) cannot:
    the role must trust the service, and its session may s3:GetBucketAcl the bucket and s3:PutObject the
    object with the bucket-owner-full-control ACL (and kms:GenerateDataKey through S3 for a KMS key),
    as IAM decides any request (identity policies, bucket policy, key policy, SCPs)."""
    role = policies.role_by_arn(role_arn)
    if role is None:
        return f"role {role_arn} does not exist"
    if not principals.service_trusted(service, role).allowed:
        return f"the trust policy of {role_arn} does not admit {service}"
    account = role.arn.split(":")[4]
    principal = principals.role_principal(role, f"arn:aws:sts::{account}:assumed-role/{role.name}/{session}")
    headers = {"x-amz-acl": "bucket-owner-full-control"}
    if kms_key_arn:
        headers.update({"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": kms_key_arn})
    for req in (aws_request.Req("s3", "GetBucketAcl", {}, region, "GET", f"/{bucket}", {"acl": [""]}, {}),
                aws_request.Req("s3", "PutObject", {}, region, "PUT", f"/{bucket}/{key}", {}, headers)):
        denial = authz.authorize(principal, req)
        if denial is not None:
            return denial.message
    return None


def snapshot_refusal(account: str, region: str, recorder: Any, channel: Any, key: str) -> tuple[str, str] | None:
    """Why Config cannot write the snapshot `key`, as (error code, message), or None. "AWS Config uses the
    IAM role you assigned to the configuration recorder to deliver configuration history and snapshots
    ... If the bucket policy doesn't grant WRITE access to the IAM role, AWS Config uses the
    config.amazonaws.com service principal"; with the service-linked role it writes as the service
    principal only (https://docs.aws.amazon.com/config/latest/developerguide/s3-bucket-policy.html); so
    too with the KMS key ("If the IAM role, Amazon S3 bucket policy, or AWS KMS key do not provide
    appropriate access to AWS Config ... AWS Config sends the information again, this time as the AWS
    Config service principal": https://docs.aws.amazon.com/config/latest/developerguide/s3-kms-key-policy.html).
    The codes are S3's (NoSuchBucket, AccessDenied: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html)."""
    bucket, kms = channel.s3_bucket_name, channel.s3_kms_key_arn or None
    if resources.s3_bucket(bucket).account is None:
        return "NoSuchBucket", f"The specified bucket does not exist: {bucket}"
    role_arn = getattr(recorder, "role_arn", "") or ""
    as_role = None
    if role_arn and "/aws-service-role/" not in role_arn:
        as_role = role_write_refusal(role_arn, CONFIG, region, bucket, key, kms, "AWSConfig-BucketConfigCheck")
        if as_role is None:
            return None
    refused = rules.config_delivery_refusal(account, region, bucket, channel.s3_key_prefix, object_key=key, key_arn=kms,
                                            own_bucket_as_role=False)
    if refused is None:
        return None
    why = refused[1] + (f"; as the recorder's role: {as_role}" if as_role else "")
    return "AccessDenied", f"Access Denied ({why})"


def deliver_snapshot(account: str, region: str, name: str, snapshot_id: str) -> None:
    """Config writes the snapshot (on the delivery thread, after the delay) and records the attempt in
    the channel's configSnapshotDeliveryInfo."""
    from moto.config.models import config_backends

    backend = config_backends[account][region]
    channel = backend.delivery_channels.get(name)
    if channel is None:
        return
    now = utcnow()
    recorder = next(iter(backend.recorders.values()), None)
    key = snapshot_key(account, region, channel.s3_key_prefix, snapshot_id, now)
    info = SNAPSHOTS.setdefault((account, region, name), {})
    info["lastAttemptTime"] = now.timestamp()
    refused = snapshot_refusal(account, region, recorder, channel, key)
    if refused is not None:
        info.update(lastStatus="Failure", lastErrorCode=refused[0], lastErrorMessage=refused[1])
        log(f"config {account} {region}: snapshot {snapshot_id} not delivered: {refused[1]}")
        return
    doc = {"fileVersion": "1.0", "configSnapshotId": snapshot_id, "configurationItems": []}
    deliver.put_object(channel.s3_bucket_name, key, gzip.compress(json.dumps(doc).encode()), channel.s3_kms_key_arn or None,
                       "application/x-gzip")
    info.update(lastStatus="Success", lastSuccessfulTime=now.timestamp())
    info.pop("lastErrorCode", None)
    info.pop("lastErrorMessage", None)


def patch_config() -> None:
    from moto.config import models as config_models
    from moto.config import responses as config
    from moto.config.exceptions import NoSuchConfigurationAggregatorException, NoSuchDeliveryChannelException

    def deliver_config_snapshot(self):  # type: ignore[no-untyped-def]
        """DeliverConfigSnapshot: NoSuchDeliveryChannelException, NoAvailableConfigurationRecorderException
        ("There are no configuration recorders available to provide the role needed to describe your
        resources"), NoRunningConfigurationRecorderException ("There is no configuration recorder
        running"); else a configSnapshotId, the snapshot delivered later."""
        name = self._get_param("deliveryChannelName")
        backend = self.config_backend
        if name not in backend.delivery_channels:
            raise NoSuchDeliveryChannelException(name)
        recorder = next(iter(backend.recorders.values()), None)
        if recorder is None:
            raise config_error("NoAvailableConfigurationRecorderException",
                               "There are no configuration recorders available to provide the role needed to describe "
                               "your resources. Create a configuration recorder.")
        if not recorder.status.recording:
            raise config_error("NoRunningConfigurationRecorderException", "There is no configuration recorder running.")
        snapshot_id = str(uuid.uuid4())
        account, region = self.current_account, self.region

        def deliver_config_snapshot_file() -> None:
            deliver_snapshot(account, region, name, snapshot_id)

        later(deliver_config_snapshot_file)
        return json.dumps({"configSnapshotId": snapshot_id})

    # DescribeDeliveryChannelStatus: configSnapshotDeliveryInfo is what the snapshots' deliveries
    # recorded (lastStatus Success | Failure, lastErrorCode, lastErrorMessage, lastAttemptTime,
    # lastSuccessfulTime: https://docs.aws.amazon.com/config/latest/APIReference/API_ConfigExportDeliveryInfo.html),
    # empty until one was attempted; the history and stream infos stay the extension's.
    describe_status = config.ConfigResponse.describe_delivery_channel_status
    if mine(describe_status):
        return

    def describe_delivery_channel_status(self):  # type: ignore[no-untyped-def]
        answer = json.loads(describe_status(self))
        for status in answer.get("DeliveryChannelsStatus", []):
            recorded = SNAPSHOTS.get((self.current_account, self.region, status.get("name")))
            status["configSnapshotDeliveryInfo"] = dict(recorded) if recorded else {}
        return json.dumps(answer)

    install(config.ConfigResponse, "deliver_config_snapshot", deliver_config_snapshot)
    install(config.ConfigResponse, "describe_delivery_channel_status", describe_delivery_channel_status)

    # A channel deleted and made again starts with no snapshot delivered.
    delete_channel = config_models.ConfigBackend.delete_delivery_channel

    def delete_delivery_channel(self, channel_name):  # type: ignore[no-untyped-def]
        delete_channel(self, channel_name)
        SNAPSHOTS.pop((self.account_id, self.region_name, channel_name), None)

    if not mine(delete_channel):
        install(config_models.ConfigBackend, "delete_delivery_channel", delete_delivery_channel)
    patch_aggregators(config, config_models, NoSuchConfigurationAggregatorException)


# ---------------------------------------------------------------------------------------------------
# AWS Config: the organization aggregator reads the organization as its role
# (https://docs.aws.amazon.com/config/latest/APIReference/API_DescribeConfigurationAggregatorSourcesStatus.html)

# (account, region, aggregator name) -> {"final": when the first read is due (time.monotonic),
#   "last": when the last read ran (time.monotonic), "status": {source key: AggregatedSourceStatus}}
AGGREGATORS: dict[tuple[str, str, str], dict] = {}
# What the aggregator's role needs: AWSConfigRoleForOrganizations grants ListAccounts,
# DescribeOrganization, ListAWSServiceAccessForOrganization and ListDelegatedAdministrators
# (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSConfigRoleForOrganizations.html);
# Config lists the organization's accounts and reads the organization, and a delegated administrator's
# aggregator also confirms the registration ("You are not a registered delegated administrator for
# AWS Config with permissions to call ListDelegatedAdministrators API":
# https://docs.aws.amazon.com/config/latest/APIReference/API_PutConfigurationAggregator.html, errors).
AGGREGATOR_READS = ("ListAccounts", "DescribeOrganization")


@functools.lru_cache(maxsize=1)
def config_regions() -> list[str]:
    import botocore.session

    return sorted(botocore.session.get_session().get_available_regions("config"))


def aggregator_refusal(account: str, aggregator: Any) -> tuple[str, str] | None:
    """Why Config cannot read the organization for `aggregator` now, as (error code, message), or None:
    the account must still be the management account or Config's delegated administrator, and Config
    must be able to assume the source's role (its trust policy, with aws:SourceArn the aggregator and
    aws:SourceAccount its account: principals.service_trusted) and call Organizations with it (its
    policies, its boundary, the SCPs: authz.authorize). AWS names no error code for a source's
    failure; OrganizationAccessDeniedException is the one its API gives aggregators refused the
    organization (API_PutConfigurationAggregator, errors), AccessDeniedException STS's for a role
    that cannot be assumed."""
    from assure_local.core import delegated_admin, organization_of

    source = aggregator.organization_aggregation_source
    org = organization_of(account)
    if org is None or org[1].org is None:
        return "NoAvailableOrganizationException", "Organization is not available. Check if the account is part of an organization."
    mgmt = org[0]
    if account != mgmt and not delegated_admin(account, CONFIG):
        return ("OrganizationAccessDeniedException",
                "The account is neither the organization's management account nor a registered delegated "
                "administrator for AWS Config.")
    role_arn = source.role_arn
    role = policies.role_by_arn(role_arn)
    if role is None:
        return "AccessDeniedException", f"AWS Config cannot assume {role_arn}: the role does not exist."
    decision = principals.service_trusted(CONFIG, role, aggregator.configuration_aggregator_arn)
    if not decision.allowed:
        return "AccessDeniedException", f"AWS Config cannot assume {role_arn}: its trust policy does not admit {CONFIG}."
    principal = principals.role_principal(role, f"arn:aws:sts::{role.arn.split(':')[4]}:assumed-role/{role.name}/AWSConfig")
    reads = AGGREGATOR_READS + (("ListDelegatedAdministrators",) if account != mgmt else ())
    for op in reads:
        params = {"ServicePrincipal": CONFIG} if op == "ListDelegatedAdministrators" else {}
        denial = authz.authorize(principal, aws_request.Req("organizations", op, params, "us-east-1"))
        if denial is not None:
            return "OrganizationAccessDeniedException", denial.message
    return None


def aggregator_sources(account: str, region: str, aggregator: Any) -> list[dict]:
    """The aggregator's sources as AggregatedSourceStatus keys: the organization in each of its
    Regions, or each account in each Region (https://docs.aws.amazon.com/config/latest/APIReference/API_AggregatedSourceStatus.html)."""
    from assure_local.core import organization_of

    out = []
    source = aggregator.organization_aggregation_source
    if source is not None:
        org = organization_of(account)
        org_id = org[1].org.id if org is not None and org[1].org is not None else account
        regions = config_regions() if source.all_aws_regions else list(source.aws_regions or [])
        out += [{"SourceId": org_id, "SourceType": "ORGANIZATION", "AwsRegion": r} for r in regions]
    for accounts_source in aggregator.account_aggregation_sources or []:
        regions = config_regions() if accounts_source.all_aws_regions else list(accounts_source.aws_regions or [])
        out += [{"SourceId": a, "SourceType": "ACCOUNT", "AwsRegion": r} for a in accounts_source.account_ids for r in regions]
    return out


def account_source_refusal(account: str, region: str, source: dict) -> tuple[str, str] | None:
    """An account source is read only where that account authorized the aggregator's account and
    Region (PutAggregationAuthorization: https://docs.aws.amazon.com/config/latest/developerguide/authorize-aggregator-account-cli.html);
    the aggregator's own account needs none."""
    from moto.config.models import config_backends

    if source["SourceId"] == account:
        return None
    auths = config_backends[source["SourceId"]][source["AwsRegion"]].aggregation_authorizations
    if f"{account}/{region}" in auths:
        return None
    return ("AccessDeniedException",
            f"Account {source['SourceId']} has not authorized aggregator account {account} in {region} to collect its data.")


def aggregator_tick(account: str, region: str, name: str) -> None:
    """Config reads the aggregator's sources once (the delivery thread, or a read that finds one due)."""
    from moto.config.models import config_backends

    aggregator = config_backends[account][region].config_aggregators.get(name)
    state = AGGREGATORS.get((account, region, name))
    if aggregator is None or state is None:
        return
    now = utcnow()
    org_refusal = aggregator_refusal(account, aggregator) if aggregator.organization_aggregation_source else None
    status = {}
    for source in aggregator_sources(account, region, aggregator):
        refused = org_refusal if source["SourceType"] == "ORGANIZATION" else account_source_refusal(account, region, source)
        item = dict(source, LastUpdateTime=now.timestamp())
        if refused is None:
            item["LastUpdateStatus"] = "SUCCEEDED"
        else:
            item.update(LastUpdateStatus="FAILED", LastErrorCode=refused[0], LastErrorMessage=refused[1])
        status[(source["SourceId"], source["AwsRegion"])] = item
    state["status"], state["last"] = status, time.monotonic()


def patch_aggregators(config: Any, config_models: Any, missing: type) -> None:
    put = config_models.ConfigBackend.put_configuration_aggregator
    if mine(put):
        return

    def put_configuration_aggregator(self, config_aggregator, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = put(self, config_aggregator, *args, **kwargs)
        name = config_aggregator["ConfigurationAggregatorName"]
        key = (self.account_id, self.region_name, name)
        # A new or changed aggregator: its sources are OUTDATED until Config reads them, after the delay.
        AGGREGATORS[key] = {"final": time.monotonic() + deliver.delay(), "last": None, "status": {}}

        def read_organization() -> None:
            aggregator_tick(*key)

        later(read_organization)
        return result

    delete = config_models.ConfigBackend.delete_configuration_aggregator

    def delete_configuration_aggregator(self, config_aggregator):  # type: ignore[no-untyped-def]
        delete(self, config_aggregator)
        AGGREGATORS.pop((self.account_id, self.region_name, config_aggregator), None)

    def describe_configuration_aggregator_sources_status(self):  # type: ignore[no-untyped-def]
        """Each source (the organization, or an account, in each Region) with LastUpdateStatus SUCCEEDED,
        FAILED (LastErrorCode, LastErrorMessage) or OUTDATED (not read yet), and LastUpdateTime. Config
        reads again periodically: here once per delay, at the read that finds one due."""
        from assure_local.core import LOCK

        name = self._get_param("ConfigurationAggregatorName")
        wanted = self._get_param("UpdateStatus") or []
        backend = self.config_backend
        aggregator = backend.config_aggregators.get(name)
        if aggregator is None:
            raise missing()
        key = (self.current_account, self.region, name)
        with LOCK:
            state = AGGREGATORS.setdefault(key, {"final": time.monotonic() + deliver.delay(), "last": None, "status": {}})
            now = time.monotonic()
            if now >= state["final"] and (state["last"] is None or now - state["last"] >= deliver.delay()):
                aggregator_tick(*key)
            items = []
            for source in aggregator_sources(self.current_account, self.region, aggregator):
                item = state["status"].get((source["SourceId"], source["AwsRegion"])) or dict(source, LastUpdateStatus="OUTDATED")
                items.append(dict(item))
        if wanted:
            items = [i for i in items if i["LastUpdateStatus"] in wanted]

        return json.dumps(core.paged(items, "AggregatedSourceStatusList", self._get_param("NextToken"),
                                          self._get_param("Limit"), 100, "NextToken"))

    install(config_models.ConfigBackend, "put_configuration_aggregator", put_configuration_aggregator)
    install(config_models.ConfigBackend, "delete_configuration_aggregator", delete_configuration_aggregator)
    install(config.ConfigResponse, "describe_configuration_aggregator_sources_status",
            describe_configuration_aggregator_sources_status)


# ---------------------------------------------------------------------------------------------------
# GuardDuty: sample findings, and their export to the publishing destinations
# (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_CreateSampleFindings.html,
# https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_exportfindings.html)

# (account, region) -> finding id -> finding (stored as its export document, see `api_view`)
FINDINGS: dict[tuple[str, str], dict[str, dict]] = {}
# "If no findingTypes are specified, GuardDuty generates sample findings of all supported finding
# types": the local cloud makes a few of them.
DEFAULT_SAMPLE_TYPES = ("Recon:EC2/PortProbeUnprotectedPort", "UnauthorizedAccess:EC2/SSHBruteForce",
                        "Policy:IAMUser/RootCredentialUsage")
UNABLE = "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"


def sample_finding(account: str, region: str, detector: str, finding_type: str, when: datetime.datetime) -> dict:
    """A sample finding as GuardDuty exports it (the finding format of EventBridge's detail and the S3
    export, https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_findings-summary.html): the
    fields API_Finding requires (accountId, arn, createdAt, id, region, resource, schemaVersion,
    severity, type, updatedAt: https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Finding.html),
    marked as a sample in service.additionalInfo ("sample": true)."""
    finding_id = uuid.uuid4().hex
    stamp = iso_ms(when)
    return {
        "schemaVersion": "2.0",
        "accountId": account,
        "region": region,
        "partition": "aws",
        "id": finding_id,
        "arn": f"arn:aws:guardduty:{region}:{account}:detector/{detector}/finding/{finding_id}",
        "type": finding_type,
        "resource": {"resourceType": "Instance",
                     "instanceDetails": {"instanceId": "i-99999999", "instanceType": "m3.xlarge",
                                         "availabilityZone": f"{region}a"}},
        "service": {"serviceName": "guardduty", "detectorId": detector, "archived": False, "count": 1,
                    "eventFirstSeen": stamp, "eventLastSeen": stamp, "resourceRole": "TARGET",
                    "additionalInfo": {"sample": True}},
        "severity": 5.0,
        "createdAt": stamp,
        "updatedAt": stamp,
        "title": f"Sample finding of type {finding_type}",
        "description": f"This is a sample finding of type {finding_type} generated by CreateSampleFindings.",
    }


def api_view(finding: dict) -> dict:
    """The finding as GetFindings answers it: service.additionalInfo is a ServiceAdditionalInfo
    (value, a JSON string, and type) in the API (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Service.html)."""
    out = json.loads(json.dumps(finding))
    info = out["service"].pop("additionalInfo", {})
    out["service"]["additionalInfo"] = {"value": json.dumps(info), "type": "default"}
    return out


def visible_findings(gd: Any, account: str, region: str) -> list[dict]:
    """The findings a detector shows: its account's own and, for an administrator, those of each member
    whose relationship is Enabled ("the administrator account can view ... findings for member
    accounts": https://docs.aws.amazon.com/guardduty/latest/ug/administrator_member_relationships.html)."""
    out = list(FINDINGS.get((account, region), {}).values())
    for member, record in gd.members.get((account, region), {}).items():
        rel = gd.administrator.get((member, region))
        if record.get("relationshipStatus") == "Enabled" and rel and rel["accountId"] == account:
            out += list(FINDINGS.get((member, region), {}).values())
    return out


def dig(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def criteria_hold(finding: dict, criteria: dict | None) -> bool:
    """ListFindings' findingCriteria (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Condition.html):
    eq/equals, neq/notEquals, gt/gte/lt/lte and their long names, on the finding's attribute path."""
    for path, cond in ((criteria or {}).get("criterion") or {}).items():
        value = dig(finding, path)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        for op, expected in (cond or {}).items():
            if op in ("eq", "equals") and text not in [str(e) for e in expected]:
                return False
            if op in ("neq", "notEquals") and text in [str(e) for e in expected]:
                return False
            try:
                number = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                number = None
            bounds = {"gt": float.__gt__, "greaterThan": float.__gt__, "gte": float.__ge__, "greaterThanOrEqual": float.__ge__,
                      "lt": float.__lt__, "lessThan": float.__lt__, "lte": float.__le__, "lessThanOrEqual": float.__le__}
            if op in bounds and (number is None or not bounds[op](number, float(expected))):
                return False
    return True


def exporters(gd: Any, account: str, region: str, detector: str) -> list[tuple[str, str, str]]:
    """(account, detector, destination id) of each publishing destination that exports a finding of
    `account`'s detector: its own, and its administrator's when the relationship is Enabled ("When you
    configure export findings in an administrator account, all the findings from the associated member
    accounts that are generated in the same Region are also exported to the same location":
    guardduty_exportfindings.html, Considerations)."""
    out = [(account, detector, d) for d in gd.destinations.get((account, region, detector), {})]
    rel = gd.administrator.get((account, region))
    if rel and rel.get("relationshipStatus") == "Enabled":
        admin = rel["accountId"]
        admin_detector = gd.detector_id_of(admin, region)
        if admin_detector:
            out += [(admin, admin_detector, d) for d in gd.destinations.get((admin, region, admin_detector), {})]
    return out


def export(gd: Any, account: str, region: str, detector: str, destination_id: str, findings: list[dict]) -> None:
    """The exporting detector's GuardDuty principal writes the batch, one finding per line, gzipped, to
    `[prefix/]AWSLogs/ACCOUNT/GuardDuty/REGION/YYYY/MM/DD/UUID.jsonl.gz` (rules.guardduty_export_key)
    encrypted with the destination's key, if the bucket and key policies let it
    (rules.guardduty_export_refusal); the destination records the outcome."""
    destination = gd.destinations.get((account, region, detector), {}).get(destination_id)
    if destination is None:
        return
    from assure_local.core import transitional

    if transitional(destination.get("_final")):
        # Not verified yet: GuardDuty publishes once it is.
        deliver.later(max(0.05, destination["_final"] - time.monotonic()),
                      lambda: export(gd, account, region, detector, destination_id, findings))
        return
    findings = [f for f in findings if not f["service"].get("archived")]
    if not findings:
        return
    props = destination["destinationProperties"]
    bucket, _, prefix = props["destinationArn"].removeprefix("arn:aws:s3:::").partition("/")
    key = rules.guardduty_export_key(account, region, prefix)
    refusal = rules.guardduty_export_refusal(account, region, detector, props["destinationArn"], props["kmsKeyArn"],
                                             object_key=key)
    if refusal is not None:
        if destination.get("_export", {}).get("ok", True):
            destination["_export"] = {"ok": False, "since": epoch_ms(), "reason": refusal}
        log(f"guardduty {account} {region}: export to {props['destinationArn']} refused: {refusal}")
        return
    body = "".join(json.dumps(f) + "\n" for f in findings).encode()
    deliver.put_object(bucket, key, gzip.compress(body), props["kmsKeyArn"], "application/x-gzip")
    destination["_export"] = {"ok": True, "at": epoch_ms(), "key": key}


def patch_guardduty() -> None:

    cls = guardduty.GuardDuty

    def create_sample_findings(self, call, d):  # type: ignore[no-untyped-def]
        """CreateSampleFindings: sample findings of the types asked (or a few), in the detector; each
        destination that exports them publishes them after the delay."""
        self.detector(call, d)
        types = call.body.get("findingTypes") or list(DEFAULT_SAMPLE_TYPES)
        now = utcnow()
        made = [sample_finding(call.account, call.region, d, t, now) for t in types]
        store = FINDINGS.setdefault((call.account, call.region), {})
        for f in made:
            store[f["id"]] = f
        for acct, det, dest in exporters(self, call.account, call.region, d):
            def export_findings(acct=acct, det=det, dest=dest) -> None:
                export(self, acct, call.region, det, dest, made)

            later(export_findings)
        return {}

    def list_findings(self, call, d):  # type: ignore[no-untyped-def]
        """ListFindings: the ids of the findings the detector shows, filtered by findingCriteria and
        sorted by sortCriteria (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_ListFindings.html)."""
        self.detector(call, d)
        found = [f for f in visible_findings(self, call.account, call.region) if criteria_hold(f, call.body.get("findingCriteria"))]
        sort = call.body.get("sortCriteria") or {}
        if sort.get("attributeName"):
            found.sort(key=lambda f: str(dig(f, sort["attributeName"])), reverse=sort.get("orderBy") == "DESC")
        return core.paged([f["id"] for f in found], "findingIds", call.body.get("nextToken"),
                               call.body.get("maxResults"))

    def get_findings(self, call, d):  # type: ignore[no-untyped-def]
        """GetFindings: the findings asked for, among those the detector shows."""
        self.detector(call, d)
        shown = {f["id"]: f for f in visible_findings(self, call.account, call.region)}
        return {"findings": [api_view(shown[i]) for i in call.body.get("findingIds") or [] if i in shown]}

    with_status = cls._with_status
    if mine(with_status):
        return

    def _with_status(self, call, d, destination):  # type: ignore[no-untyped-def]
        """The destination's status: PENDING_VERIFICATION during its transition (the extension's); then
        UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY from the first refused export until one succeeds, or
        while the policies refuse GuardDuty now (the extension's check); PUBLISHING otherwise.
        publishingFailureStartTimestamp: "The time, in epoch millisecond format, at which GuardDuty was
        first unable to publish findings to the destination"
        (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_DescribePublishingDestination.html)."""
        out = with_status(self, call, d, destination)
        if out.get("status") == "PENDING_VERIFICATION":
            return out
        last = destination.get("_export")
        if last is not None and not last["ok"]:
            destination.pop("_checked_since", None)
            out.update(status=UNABLE, publishingFailureStartTimestamp=last["since"], statusReason=last["reason"])
        elif out.get("status") == UNABLE:
            since = destination.setdefault("_checked_since", epoch_ms())
            out["publishingFailureStartTimestamp"] = since
        else:
            destination.pop("_checked_since", None)
            out["publishingFailureStartTimestamp"] = 0
        return out

    for name, fn in (("create_sample_findings", create_sample_findings), ("list_findings", list_findings),
                     ("get_findings", get_findings), ("_with_status", _with_status)):
        install(cls, name, fn)
    routes = [("POST", r"/detector/(?P<d>[^/]+)/findings/create", "create_sample_findings"),
              ("POST", r"/detector/(?P<d>[^/]+)/findings/get", "get_findings"),
              ("POST", r"/detector/(?P<d>[^/]+)/findings", "list_findings")]
    cls.routes = list(cls.routes) + [r for r in routes if r not in cls.routes]


# ---------------------------------------------------------------------------------------------------
# CloudWatch: an alarm's state change, its actions, its history
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html,
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarmHistory.html)

CLOUDWATCH = "cloudwatch.amazonaws.com"
# (account, region) -> AlarmHistoryItems, oldest first
HISTORY: dict[tuple[str, str], list[dict]] = {}
KMS_REFUSED = "CloudWatch Alarms does not have authorization to access the SNS topic encryption key."


@functools.lru_cache(maxsize=64)
def region_name(region: str) -> str:
    """The Region's long name, as an alarm's notification writes it ("Region": "US East (N. Virginia)")."""
    import botocore.session

    for partition in botocore.session.get_session().get_data("endpoints")["partitions"]:
        found = partition.get("regions", {}).get(region)
        if found:
            return str(found.get("description", region))
    return region


def cw_time(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def history_add(account: str, region: str, alarm: Any, kind: str, summary: str, data: dict,
                when: datetime.datetime | None = None) -> None:
    HISTORY.setdefault((account, region), []).append({
        "AlarmName": alarm.name, "AlarmType": "CompositeAlarm" if getattr(alarm, "rule", None) else "MetricAlarm",
        "Timestamp": when or utcnow(), "HistoryItemType": kind, "HistorySummary": summary,
        "HistoryData": json.dumps(data)})


def alarm_message(account: str, region: str, alarm: Any, old: str, when: datetime.datetime) -> dict:
    """The notification CloudWatch publishes for a metric alarm's state change (the schema of "Schema when
    a metric alarm changes state": https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html)."""
    dims = [{"value": d.value, "name": d.name} for d in getattr(alarm, "dimensions", []) or []]
    return {
        "AlarmName": alarm.name, "AlarmDescription": alarm.description, "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": cw_time(alarm.configuration_updated_timestamp),
        "NewStateValue": alarm.state_value, "NewStateReason": alarm.state_reason, "StateChangeTime": cw_time(when),
        "Region": region_name(region), "AlarmArn": alarm.alarm_arn, "OldStateValue": old,
        "OKActions": list(alarm.ok_actions or []), "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
        "Trigger": {"MetricName": alarm.metric_name, "Namespace": alarm.namespace, "StatisticType": "Statistic",
                    "Statistic": str(alarm.statistic or "").upper(), "Unit": alarm.unit, "Dimensions": dims,
                    "Period": alarm.period, "EvaluationPeriods": alarm.evaluation_periods,
                    "DatapointsToAlarm": alarm.datapoints_to_alarm, "ComparisonOperator": alarm.comparison_operator,
                    "Threshold": alarm.threshold, "TreatMissingData": alarm.treat_missing_data or "",
                    "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or ""},
    }


def everyone_as_star(doc: dict | None) -> dict | None:
    """A topic policy with Principal {"AWS": "*"} read as "*": the default topic policy (everyone, on
    AWS:SourceOwner the topic's account) lets the account's own alarms publish, as CloudWatch's guide
    asks no topic policy of an alarm publishing to its own account's topic and AWS's troubleshooting
    names one only when the history shows the publish refused
    (https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger)."""
    if not doc:
        return doc
    out = json.loads(json.dumps(doc))
    for stmt in iam.statements(out):
        p = stmt.get("Principal")
        if isinstance(p, dict) and "*" in iam.as_list(p.get("AWS")):
            stmt["Principal"] = "*"
    return out


def publish_refusal(account: str, alarm_arn: str, topic: Any) -> str | None:
    """Why CloudWatch cannot publish the alarm's notification to `topic`: the topic policy must let
    cloudwatch.amazonaws.com sns:Publish with the alarm as the source, and an encrypted topic's key
    policy must let it kms:GenerateDataKey* and kms:Decrypt
    (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services);
    an AWS managed key (alias/aws/sns) admits no service. The texts are those the alarm history shows
    (https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger)."""
    ctx = service_context(CLOUDWATCH, account, alarm_arn)
    policy = everyone_as_star(iam.parse(topic.policy))
    if not service_allows(policy, CLOUDWATCH, "sns:Publish", topic.arn, ctx):
        return f"Resource: {alarm_arn} is not authorized to perform: SNS:Publish on resource: {topic.arn}"
    key_id = topic.kms_master_key_id
    if key_id:
        if str(key_id).startswith("alias/aws/"):
            return KMS_REFUSED
        key = resources.kms_key(topic.sns_backend.region_name, topic.account_id, key_id)
        if key is None:
            return KMS_REFUSED
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            if not service_allows(key.policy, CLOUDWATCH, action, key.arn, ctx):
                return KMS_REFUSED
    return None


def execute_action(account: str, region: str, alarm_name: str, action: str, message: dict, subject: str,
                   state_time: datetime.datetime) -> None:
    """CloudWatch executes one alarm action (an SNS topic) and records the outcome in the alarm's
    history: "Successfully executed action TOPIC" or "Failed to execute action TOPIC. Received error:
    "…"" (the texts of https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger),
    HistoryData {actionState, stateUpdateTimestamp, notificationResource, publishedMessage | error}."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.sns.models import sns_backends

    alarm = cloudwatch_backends[account][region].alarms.get(alarm_name)
    if alarm is None:
        return
    parts = action.split(":")
    if len(parts) < 6 or parts[2] != "sns":
        return  # Auto Scaling, EC2, Systems Manager, Lambda actions: not modelled
    topic = sns_backends[parts[4]][parts[3]].topics.get(action)
    data: dict[str, Any] = {"actionState": "Failed", "stateUpdateTimestamp": epoch_ms(state_time),
                            "notificationResource": action}
    error = "Topic does not exist" if topic is None else publish_refusal(account, alarm.alarm_arn, topic)
    if error is not None:
        data["error"] = error
        history_add(account, region, alarm, "Action", f'Failed to execute action {action}. Received error: "{error}"', data)
        return
    text = json.dumps(message)
    topic.publish(text, subject=subject)
    data.update(actionState="Succeeded", publishedMessage=text)
    history_add(account, region, alarm, "Action", f"Successfully executed action {action}", data)


def patch_cloudwatch() -> None:
    from moto.cloudwatch import models as cw_models
    from moto.cloudwatch import responses as cw
    from moto.core.responses import ActionResult

    set_state = cw_models.CloudWatchBackend.set_alarm_state
    if mine(set_state):
        return

    def set_alarm_state(self, alarm_name, reason, reason_data, state_value):  # type: ignore[no-untyped-def]
        """SetAlarmState: "When the updated state differs from the previous value, the action configured
        for the appropriate state is invoked" (API_SetAlarmState): the StateUpdate in the history now,
        each SNS action after the delay, if the alarm's actions are enabled."""
        alarm = self.alarms.get(alarm_name)
        old, old_reason = (alarm.state_value, alarm.state_reason) if alarm is not None else (None, None)
        set_state(self, alarm_name, reason, reason_data, state_value)
        alarm = self.alarms[alarm_name]
        if old == state_value:
            return
        now = utcnow()
        new_state: dict[str, Any] = {"stateValue": state_value, "stateReason": reason}
        if reason_data:
            try:
                new_state["stateReasonData"] = json.loads(reason_data)
            except ValueError:
                pass
        history_add(self.account_id, self.region_name, alarm, "StateUpdate", f"Alarm updated from {old} to {state_value}",
                    {"version": "1.0", "oldState": {"stateValue": old, "stateReason": old_reason}, "newState": new_state}, now)
        enabled = alarm.actions_enabled
        if isinstance(enabled, str):
            enabled = enabled.lower() == "true"
        if not enabled:
            return
        actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions,
                   "INSUFFICIENT_DATA": alarm.insufficient_data_actions}.get(state_value) or []
        message = alarm_message(self.account_id, self.region_name, alarm, old or "", now)
        subject = f'{state_value}: "{alarm.name}" in {region_name(self.region_name)}'[:100]
        account, region = self.account_id, self.region_name
        for action in actions:
            def execute_alarm_action(action=action) -> None:
                execute_action(account, region, alarm_name, action, message, subject, now)

            later(execute_alarm_action)

    def describe_alarm_history(self):  # type: ignore[no-untyped-def]
        """DescribeAlarmHistory: AlarmName, AlarmTypes (metric alarms when omitted), HistoryItemType,
        StartDate, EndDate, ScanBy (newest first by default), MaxRecords (100), NextToken."""
        name = self._get_param("AlarmName")
        kind = self._get_param("HistoryItemType")
        types = self._get_param("AlarmTypes") or ["MetricAlarm"]
        start, end = self._get_param("StartDate"), self._get_param("EndDate")

        def when(value: Any) -> datetime.datetime | None:
            if value is None or value == "":
                return None
            if isinstance(value, datetime.datetime):
                return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
            if isinstance(value, (int, float)):
                return datetime.datetime.fromtimestamp(value, datetime.UTC)
            return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))

        start, end = when(start), when(end)
        items = [i for i in HISTORY.get((self.current_account, self.region), [])
                 if (not name or i["AlarmName"] == name) and (not kind or i["HistoryItemType"] == kind)
                 and i["AlarmType"] in types and (start is None or i["Timestamp"] >= start)
                 and (end is None or i["Timestamp"] <= end)]
        items.sort(key=lambda i: i["Timestamp"], reverse=(self._get_param("ScanBy") or "TimestampDescending") == "TimestampDescending")

        return ActionResult(core.paged([dict(i) for i in items], "AlarmHistoryItems", self._get_param("NextToken"),
                                            self._get_param("MaxRecords"), 100, "NextToken"))

    install(cw_models.CloudWatchBackend, "set_alarm_state", set_alarm_state)
    install(cw.CloudWatchResponse, "describe_alarm_history", describe_alarm_history)


# ---------------------------------------------------------------------------------------------------
# SNS delivering to its subscriptions
# (https://docs.aws.amazon.com/sns/latest/dg/sns-sqs-as-subscriber.html,
# https://docs.aws.amazon.com/sns/latest/dg/sns-http-https-endpoint-as-subscriber.html)

SNS = "sns.amazonaws.com"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
HTTP_TIMEOUT = 2.0
_HTTP = ThreadPoolExecutor(max_workers=4, thread_name_prefix="assure-sns-http")
_HTTP_PENDING = {"count": 0}
_HTTP_CV = threading.Condition()


def count_delivery(topic: Any, delivered: bool) -> None:
    """AWS/SNS NumberOfNotificationsDelivered or NumberOfNotificationsFailed, dimension TopicName
    (https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html), in the topic's
    account and Region, where GetMetricStatistics and GetMetricData read them."""
    from moto.cloudwatch.models import cloudwatch_backends

    from assure_local.core import LOCK

    name = "NumberOfNotificationsDelivered" if delivered else "NumberOfNotificationsFailed"
    with LOCK:
        cloudwatch_backends[topic.account_id][topic.sns_backend.region_name].put_metric_data("AWS/SNS", [
            {"MetricName": name, "Value": 1.0, "Unit": "Count", "Dimensions": [{"Name": "TopicName", "Value": topic.name}]}])


def queue_refusal(topic: Any, queue: Any, queue_arn: str) -> str | None:
    """Why SNS cannot send to the queue: its policy must let sns.amazonaws.com sqs:SendMessage with the
    topic as aws:SourceArn ("Publish messages to an Amazon SQS queue":
    https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html), and an encrypted
    queue's key policy must let it kms:GenerateDataKey and kms:Decrypt; the AWS managed key (aws/sqs)
    cannot admit it (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html,
    "Enable compatibility between encrypted queues and AWS services")."""
    ctx = service_context(SNS, topic.account_id, topic.arn)
    if not service_allows(iam.parse(queue.policy), SNS, "sqs:SendMessage", queue_arn, ctx):
        return f"the policy of queue {queue_arn} does not let {SNS} sqs:SendMessage for {topic.arn}"
    key_id = getattr(queue, "kms_master_key_id", None)
    if key_id:
        region, owner = queue_arn.split(":")[3], queue_arn.split(":")[4]
        key = None if str(key_id).startswith("alias/aws/") else resources.kms_key(region, owner, key_id)
        if key is None:
            return f"{SNS} cannot use the key {key_id} of queue {queue_arn}"
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            if not service_allows(key.policy, SNS, action, key.arn, ctx):
                return f"the policy of key {key.arn} does not let {SNS} {action}"
    return None


def deliver_sqs(sub: Any, message: str, message_id: str, subject: str | None, message_attributes: dict | None,
                group_id: str | None, deduplication_id: str | None) -> bool:
    """SNS sends the notification to the subscribed queue, in the queue's account (moto's own delivery
    looked for it in the topic's), as moto formats it (the notification JSON, or the raw message)."""
    from moto.sqs.models import sqs_backends

    from assure_local.core import LOCK

    parts = sub.endpoint.split(":")
    if len(parts) != 6:
        return False
    region, owner, name = parts[3], parts[4], parts[5]
    with LOCK:
        backend = sqs_backends[owner][region]
        queue = backend.queues.get(name)
        why = f"queue {sub.endpoint} does not exist" if queue is None else queue_refusal(sub.topic, queue, sub.endpoint)
        if why is not None:
            log(f"sns {sub.topic.arn}: not delivered to {sub.endpoint}: {why}")
            return False
        raw = str(sub.attributes.get("RawMessageDelivery", "false")).lower() == "true"
        if not raw:
            body = json.dumps(sub.get_post_data(message, message_id, subject, message_attributes=message_attributes),
                              sort_keys=True, indent=2, separators=(",", ": "))
            backend.send_message(name, body, deduplication_id=deduplication_id, group_id=group_id, validate_group_id=False)
        else:
            attributes = {}
            for k, v in (message_attributes or {}).items():
                kind = "BinaryValue" if v["Type"].startswith("Binary") else "StringValue"
                attributes[k] = {"DataType": v["Type"], kind: str(v["Value"]) if v["Type"].startswith("Number") else v["Value"]}
            backend.send_message(name, message, message_attributes=attributes, deduplication_id=deduplication_id,
                                 group_id=group_id, validate_group_id=False)
    return True


def deliver_http(sub: Any, message: str, message_id: str, subject: str | None) -> None:
    """SNS POSTs the notification to an HTTP/HTTPS subscriber (its headers:
    https://docs.aws.amazon.com/sns/latest/dg/http-header.html), from a worker of its own, so neither the
    publisher nor the delivery thread waits: to the loopback interface only (the local cloud reaches
    nothing else), within 2 s; a 2xx answer is a delivery."""
    topic = sub.topic
    host = urlparse(sub.endpoint).hostname or ""
    if host not in LOOPBACK:
        log(f"sns {topic.arn}: not delivered to {sub.endpoint}: the local cloud delivers to the loopback interface only")
        count_delivery(topic, False)
        return
    post = sub.get_post_data(message, message_id, subject)
    headers = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification",
               "x-amz-sns-message-id": message_id, "x-amz-sns-topic-arn": topic.arn,
               "x-amz-sns-subscription-arn": sub.arn}

    def send() -> None:
        import requests

        ok = False
        try:
            answer = requests.post(sub.endpoint, data=json.dumps(post), headers=headers, timeout=HTTP_TIMEOUT,
                                   allow_redirects=False)
            ok = 200 <= answer.status_code < 300
        except Exception as e:
            log(f"sns {topic.arn}: delivery to {sub.endpoint} failed: {e!r}")
        try:
            count_delivery(topic, ok)
        finally:
            with _HTTP_CV:
                _HTTP_PENDING["count"] -= 1
                _HTTP_CV.notify_all()

    with _HTTP_CV:
        _HTTP_PENDING["count"] += 1
    _HTTP.submit(send)


def patch_sns() -> None:
    from moto.sns import models as sns_models

    original = sns_models.Subscription.publish
    if mine(original):
        return

    def publish(self, message, message_id, subject=None, message_attributes=None, group_id=None,  # type: ignore[no-untyped-def]
                deduplication_id=None, message_structure=None):
        """A notification to one subscription: only a confirmed one, only if its filter policy matches;
        to a queue if its policy lets SNS, to an HTTP(S) endpoint on the loopback interface; each
        delivery counted in AWS/SNS. An email is counted delivered when SNS hands it to its mail
        system, which the local cloud has none of: a confirmed email subscription stands for one
        that accepts it. Other protocols (SMS, Lambda, applications) as moto does, uncounted."""
        if str(self.attributes.get("PendingConfirmation", "false")).lower() == "true":
            return
        if self.protocol in ("email", "email-json"):
            if self._filter_policy_matcher is None or self._filter_policy_matcher.matches(message_attributes, message):
                count_delivery(self.topic, True)
        if self.protocol not in ("sqs", "http", "https"):
            return original(self, message, message_id, subject=subject, message_attributes=message_attributes,
                            group_id=group_id, deduplication_id=deduplication_id, message_structure=message_structure)
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(message_attributes, message):
            return
        if message_structure == "json":
            message = self._parse_message_structure(message, self.protocol)
        if self.protocol == "sqs":
            count_delivery(self.topic, deliver_sqs(self, message, message_id, subject, message_attributes, group_id,
                                                   deduplication_id))
        else:
            deliver_http(self, message, message_id, subject)

    install(sns_models.Subscription, "publish", publish)


def patch_s3_bucket_policy() -> None:
    """moto evaluates a bucket's policy itself before it serves an object (FakeBucket.get_permission):
    it matches no Principal but "*", reads no request context, and turns any statement whose Condition
    it cannot satisfy into a deny, even an Allow. So the policies the delivering services' guides give
    (GuardDuty's "Deny non-HTTPS access", conditioned on aws:SecureTransport) refused every read of
    the objects delivered. While IAM is enforced the extension has already authorized the request
    against the whole policy (authz.authorize, as S3 does:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-auth-workflow-object-operation.html),
    the anonymous user's requests included (Extension.unsigned), so moto's second, cruder evaluation
    answers "permitted" (what reaches moto was allowed). Without enforcement (`--no-iam`) nothing is
    authorized, bucket policies included: moto's evaluation would refuse every read of a TLS-only
    bucket (the pipeline's artifacts and checkpoints), which AWS never does over TLS."""
    from moto.iam.access_control import PermissionResult
    from moto.s3 import models as s3_models

    original = s3_models.FakeBucket.get_permission
    if mine(original):
        return

    def get_permission(self, action, resource):  # type: ignore[no-untyped-def]
        del self, action, resource
        return PermissionResult.PERMITTED

    install(s3_models.FakeBucket, "get_permission", get_permission)


def settle(timeout: float = 10.0) -> None:
    """Runs every queued delivery now (deliver.flush) and waits for SNS's HTTP deliveries: for tests."""
    deadline = time.monotonic() + timeout
    for _ in range(3):
        deliver.flush()
        with _HTTP_CV:
            while _HTTP_PENDING["count"] > 0 and time.monotonic() < deadline:
                _HTTP_CV.wait(0.05)


# ---------------------------------------------------------------------------------------------------


def patch() -> None:
    """Installs the operations and the deliveries; again, only what is not installed (`install`)."""
    PATCHED["done"] = True
    try:
        patch_config()
        patch_guardduty()
        patch_cloudwatch()
        patch_sns()
        patch_s3_bucket_policy()
    except Exception:
        log(f"deliver_services: patch failed:\n{traceback.format_exc()}")
        raise

"""AWS Config: DescribeDeliveryChannelStatus and service-linked configuration recorders, which moto lacks."""

from __future__ import annotations

import datetime
import functools
import gzip
import json
import time
import uuid
from typing import Any

from assure_local import authz, aws_request, core, policies, principals, resources, rules, scheduler
from assure_local.aws_request import Req, p
from assure_local.core import replace
from assure_local.deliver_services import install, later, log, mine, utcnow
from assure_local.rules import Refusal, config_delivery_refusal


def patch_moto() -> None:
    """AWS Config: DescribeDeliveryChannelStatus and service-linked configuration recorders, which moto lacks."""
    # Config: DescribeDeliveryChannelStatus, which moto lacks. Each delivery's last status is what Config
    # finds now: Failure (AccessDenied) while the bucket policy refuses it (rules.config_delivery_refusal)
    # (https://docs.aws.amazon.com/config/latest/APIReference/API_DescribeDeliveryChannelStatus.html).
    # Snapshots' (configSnapshotDeliveryInfo) are what their deliveries recorded: deliver_services.py.
    from moto.config import responses as config
    from moto.config.exceptions import NoSuchDeliveryChannelException

    def describe_delivery_channel_status(self):
        names = self._get_param("DeliveryChannelNames") or []
        channels = self.config_backend.delivery_channels
        for name in names:
            if name not in channels:
                raise NoSuchDeliveryChannelException(name)
        now = time.time()
        out = []
        for name, ch in sorted(channels.items()):
            if names and name not in names:
                continue
            refused = rules.config_delivery_refusal(self.current_account, self.region, ch.s3_bucket_name, ch.s3_key_prefix)
            info = {"lastStatus": "Success", "lastAttemptTime": now, "lastSuccessfulTime": now}
            if refused:
                info = {"lastStatus": "Failure", "lastErrorCode": "AccessDenied", "lastErrorMessage": refused[1],
                        "lastAttemptTime": now}
            out.append({"name": name, "configSnapshotDeliveryInfo": dict(info), "configHistoryDeliveryInfo": dict(info),
                        "configStreamDeliveryInfo": {"lastStatus": "Not_Applicable"}})
        return json.dumps({"DeliveryChannelsStatus": out})

    replace(config.ConfigResponse, "describe_delivery_channel_status", describe_delivery_channel_status)

    # Config: service-linked configuration recorders, which moto lacks. A service (Security Hub CSPM,
    # CloudWatch's observability admin, ...) owns one; Config names it with the reserved prefix
    # "AWSConfigurationRecorderFor" and sets its scope (INTERNAL). It lives beside the one customer
    # managed recorder a region allows, not in its place
    # (https://docs.aws.amazon.com/config/latest/APIReference/API_PutServiceLinkedConfigurationRecorder.html,
    # https://docs.aws.amazon.com/config/latest/developerguide/stop-start-recorder.html).
    from moto.core.exceptions import JsonRESTError
    linked_names = {"securityhub.amazonaws.com": "SecurityHubCSPM", "observabilityadmin.amazonaws.com": "ObservabilityAdmin"}

    def linked(backend) -> dict:
        if not hasattr(backend, "service_linked_recorders"):
            backend.service_linked_recorders = {}
        return backend.service_linked_recorders

    def put_service_linked_configuration_recorder(self):
        principal = self._get_param("ServicePrincipal")
        recorders = linked(self.config_backend)
        if principal not in recorders:
            suffix = linked_names.get(principal, principal.split(".")[0].capitalize())
            name = f"AWSConfigurationRecorderFor{suffix}"
            recorders[principal] = {
                "arn": f"arn:aws:config:{self.region}:{self.current_account}:configuration-recorder/{name}/{uuid.uuid4().hex[:16]}",
                "name": name,
                "roleARN": f"arn:aws:iam::{self.current_account}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig",
                "recordingGroup": {"allSupported": False, "includeGlobalResourceTypes": False, "resourceTypes": [],
                                   "exclusionByResourceTypes": {"resourceTypes": []},
                                   "recordingStrategy": {"useOnly": "INCLUSION_BY_RESOURCE_TYPES"}},
                "recordingMode": {"recordingFrequency": "CONTINUOUS"},
                "recordingScope": "INTERNAL",
                "servicePrincipal": principal,
            }
        return json.dumps({"Arn": recorders[principal]["arn"], "Name": recorders[principal]["name"]})

    def delete_service_linked_configuration_recorder(self):
        principal = self._get_param("ServicePrincipal")
        gone = linked(self.config_backend).pop(principal, None)
        if gone is None:
            from moto.config.exceptions import NoSuchConfigurationRecorderException
            raise NoSuchConfigurationRecorderException(principal)
        return json.dumps({"Arn": gone["arn"], "Name": gone["name"]})

    moto_put_recorder = config.ConfigResponse.put_configuration_recorder
    prefix = "AWSConfigurationRecorderFor"

    def recorders_asked(self) -> tuple[list, list]:
        """(customer managed recorders asked for, service-linked ones asked for)."""
        names = self._get_param("ConfigurationRecorderNames") or []
        own = [n for n in names if not n.startswith(prefix)]
        mine = self.config_backend.describe_configuration_recorders(own) if own or not names else []
        theirs = [r for r in linked(self.config_backend).values() if not names or r["name"] in names]
        return mine, theirs

    def describe_configuration_recorders(self):
        mine, theirs = recorders_asked(self)
        return json.dumps({"ConfigurationRecorders": mine + theirs})

    def describe_configuration_recorder_status(self):
        mine, theirs = recorders_asked(self)
        status = [self.config_backend.recorders[r["name"]].status.to_dict() for r in mine]
        status += [{"arn": r["arn"], "name": r["name"], "recording": True, "lastStatus": "SUCCESS",
                    "servicePrincipal": r["servicePrincipal"]} for r in theirs]
        return json.dumps({"ConfigurationRecordersStatus": status})

    def put_configuration_recorder(self):
        # "The prefix AWSConfigurationRecorderFor is reserved for service-linked configuration recorders."
        # (https://docs.aws.amazon.com/config/latest/APIReference/API_PutConfigurationRecorder.html#API_PutConfigurationRecorder_Errors)
        name = (self._get_param("ConfigurationRecorder") or {}).get("name") or ""
        if name.startswith(prefix):
            raise JsonRESTError("InvalidConfigurationRecorderNameException",
                                f"The configuration recorder name is not valid. The prefix \"{prefix}\" is reserved "
                                "for service-linked configuration recorders.")
        return moto_put_recorder(self)

    replace(config.ConfigResponse, "put_service_linked_configuration_recorder", put_service_linked_configuration_recorder)
    replace(config.ConfigResponse, "delete_service_linked_configuration_recorder", delete_service_linked_configuration_recorder)
    replace(config.ConfigResponse, "describe_configuration_recorders", describe_configuration_recorders)
    replace(config.ConfigResponse, "describe_configuration_recorder_status", describe_configuration_recorder_status)
    replace(config.ConfigResponse, "put_configuration_recorder", put_configuration_recorder)


def config_organization_aggregator(req: Req, account: str, raw: bytes) -> Refusal | None:
    # PutConfigurationAggregator with an organization source: "you must be signed in to the management
    # account or a registered delegated administrator and all the features must be enabled in your
    # organization" (https://docs.aws.amazon.com/config/latest/APIReference/API_PutConfigurationAggregator.html;
    # the errors: OrganizationAccessDeniedException, NoAvailableOrganizationException,
    # OrganizationAllFeaturesNotEnabledException).
    if req.service != "config" or req.operation != "PutConfigurationAggregator":
        return None
    if not req.params.get("OrganizationAggregationSource"):
        return None
    from assure_local.core import delegated_admin, organization_of

    org = organization_of(account)
    if org is None:
        return Refusal(400, "NoAvailableOrganizationException",
                       "Organization is not available. Check if the account is part of an organization.")
    mgmt, backend = org
    if getattr(backend.org, "feature_set", "ALL") != "ALL":
        return Refusal(400, "OrganizationAllFeaturesNotEnabledException",
                       "AWS Config cannot proceed further because not all features are enabled in your organization.")
    if account != mgmt and not delegated_admin(account, "config.amazonaws.com"):
        return Refusal(400, "OrganizationAccessDeniedException",
                       "You are not a registered delegated administrator for AWS Config with permissions to call "
                       "ListDelegatedAdministrators API. Ensure that the management account registers delegated "
                       "administrator for AWS Config service principal name before the delegated administrator "
                       "creates an aggregator.")
    return None


def config_delivery_channel(req: Req, account: str, raw: bytes) -> Refusal | None:
    # PutDeliveryChannel: NoSuchBucketException for a bucket that does not exist,
    # InsufficientDeliveryPolicyException when "your Amazon S3 bucket policy does not allow Config to
    # write to it" (https://docs.aws.amazon.com/config/latest/APIReference/API_PutDeliveryChannel.html).
    if req.service != "config" or req.operation != "PutDeliveryChannel":
        return None
    channel = p(req.params, "DeliveryChannel") or {}
    bucket = channel.get("s3BucketName")
    if not bucket:
        return None  # moto answers NoSuchBucketException for an empty name
    refused = config_delivery_refusal(account, req.region, bucket, channel.get("s3KeyPrefix"))
    if refused is None:
        return None
    if refused[0] == "bucket":
        return Refusal(400, "NoSuchBucketException", f"Cannot find a S3 bucket named {bucket}.")
    return Refusal(400, "InsufficientDeliveryPolicyException",
                   f"Insufficient delivery policy to s3 bucket: {bucket}, unable to write to bucket, provided s3 key prefix is '{channel.get('s3KeyPrefix') or ''}'. ({refused[1]})")


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
    scheduler.put_object(channel.s3_bucket_name, key, gzip.compress(json.dumps(doc).encode()), channel.s3_kms_key_arn or None,
                       "application/x-gzip")
    info.update(lastStatus="Success", lastSuccessfulTime=now.timestamp())
    info.pop("lastErrorCode", None)
    info.pop("lastErrorMessage", None)


def patch_config() -> None:
    from moto.config import models as config_models
    from moto.config import responses as config
    from moto.config.exceptions import NoSuchConfigurationAggregatorException, NoSuchDeliveryChannelException

    def deliver_config_snapshot(self):
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

    def describe_delivery_channel_status(self):
        answer = json.loads(describe_status(self))
        for status in answer.get("DeliveryChannelsStatus", []):
            recorded = SNAPSHOTS.get((self.current_account, self.region, status.get("name")))
            status["configSnapshotDeliveryInfo"] = dict(recorded) if recorded else {}
        return json.dumps(answer)

    install(config.ConfigResponse, "deliver_config_snapshot", deliver_config_snapshot)
    install(config.ConfigResponse, "describe_delivery_channel_status", describe_delivery_channel_status)

    # A channel deleted and made again starts with no snapshot delivered.
    delete_channel = config_models.ConfigBackend.delete_delivery_channel

    def delete_delivery_channel(self, channel_name):
        delete_channel(self, channel_name)
        SNAPSHOTS.pop((self.account_id, self.region_name, channel_name), None)

    if not mine(delete_channel):
        install(config_models.ConfigBackend, "delete_delivery_channel", delete_delivery_channel)
    patch_aggregators(config, config_models, NoSuchConfigurationAggregatorException)


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
                ("The account is neither the organization's management account nor a registered delegated "
                "administrator for AWS Config."))
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

    def put_configuration_aggregator(self, config_aggregator, *args, **kwargs):
        result = put(self, config_aggregator, *args, **kwargs)
        name = config_aggregator["ConfigurationAggregatorName"]
        key = (self.account_id, self.region_name, name)
        # A new or changed aggregator: its sources are OUTDATED until Config reads them, after the delay.
        AGGREGATORS[key] = {"final": time.monotonic() + scheduler.delay(), "last": None, "status": {}}

        def read_organization() -> None:
            aggregator_tick(*key)

        later(read_organization)
        return result

    delete = config_models.ConfigBackend.delete_configuration_aggregator

    def delete_configuration_aggregator(self, config_aggregator):
        delete(self, config_aggregator)
        AGGREGATORS.pop((self.account_id, self.region_name, config_aggregator), None)

    def describe_configuration_aggregator_sources_status(self):
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
            state = AGGREGATORS.setdefault(key, {"final": time.monotonic() + scheduler.delay(), "last": None, "status": {}})
            now = time.monotonic()
            if now >= state["final"] and (state["last"] is None or now - state["last"] >= scheduler.delay()):
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

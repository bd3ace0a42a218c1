"""AWS Config: DescribeDeliveryChannelStatus and service-linked configuration recorders, which moto lacks."""

from __future__ import annotations

import json
import time
import uuid

from assure_local import rules
from assure_local.aws_request import Req, p
from assure_local.rules import Refusal, config_delivery_refusal


def patch_moto() -> None:
    """AWS Config: DescribeDeliveryChannelStatus and service-linked configuration recorders, which moto lacks."""
    # Config: DescribeDeliveryChannelStatus, which moto lacks. Each delivery's last status is what Config
    # finds now: Failure (AccessDenied) while the bucket policy refuses it (rules.config_delivery_refusal)
    # (https://docs.aws.amazon.com/config/latest/APIReference/API_DescribeDeliveryChannelStatus.html).
    # Snapshots' (configSnapshotDeliveryInfo) are what their deliveries recorded: deliver_services.py.
    from moto.config import responses as config
    from moto.config.exceptions import NoSuchDeliveryChannelException

    def describe_delivery_channel_status(self):  # type: ignore[no-untyped-def]
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

    config.ConfigResponse.describe_delivery_channel_status = describe_delivery_channel_status

    # Config: service-linked configuration recorders, which moto lacks. A service (Security Hub CSPM,
    # CloudWatch's observability admin, ...) owns one; Config names it with the reserved prefix
    # "AWSConfigurationRecorderFor" and sets its scope (INTERNAL). It lives beside the one customer
    # managed recorder a region allows, not in its place
    # (https://docs.aws.amazon.com/config/latest/APIReference/API_PutServiceLinkedConfigurationRecorder.html,
    # https://docs.aws.amazon.com/config/latest/developerguide/stop-start-recorder.html).
    from moto.core.exceptions import JsonRESTError
    linked_names = {"securityhub.amazonaws.com": "SecurityHubCSPM", "observabilityadmin.amazonaws.com": "ObservabilityAdmin"}

    def linked(backend) -> dict:  # type: ignore[no-untyped-def]
        if not hasattr(backend, "service_linked_recorders"):
            backend.service_linked_recorders = {}
        return backend.service_linked_recorders

    def put_service_linked_configuration_recorder(self):  # type: ignore[no-untyped-def]
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

    def delete_service_linked_configuration_recorder(self):  # type: ignore[no-untyped-def]
        principal = self._get_param("ServicePrincipal")
        gone = linked(self.config_backend).pop(principal, None)
        if gone is None:
            from moto.config.exceptions import NoSuchConfigurationRecorderException
            raise NoSuchConfigurationRecorderException(principal)
        return json.dumps({"Arn": gone["arn"], "Name": gone["name"]})

    moto_put_recorder = config.ConfigResponse.put_configuration_recorder
    prefix = "AWSConfigurationRecorderFor"

    def recorders_asked(self) -> tuple[list, list]:  # type: ignore[no-untyped-def]
        """(customer managed recorders asked for, service-linked ones asked for)."""
        names = self._get_param("ConfigurationRecorderNames") or []
        own = [n for n in names if not n.startswith(prefix)]
        mine = self.config_backend.describe_configuration_recorders(own) if own or not names else []
        theirs = [r for r in linked(self.config_backend).values() if not names or r["name"] in names]
        return mine, theirs

    def describe_configuration_recorders(self):  # type: ignore[no-untyped-def]
        mine, theirs = recorders_asked(self)
        return json.dumps({"ConfigurationRecorders": mine + theirs})

    def describe_configuration_recorder_status(self):  # type: ignore[no-untyped-def]
        mine, theirs = recorders_asked(self)
        status = [self.config_backend.recorders[r["name"]].status.to_dict() for r in mine]
        status += [{"arn": r["arn"], "name": r["name"], "recording": True, "lastStatus": "SUCCESS",
                    "servicePrincipal": r["servicePrincipal"]} for r in theirs]
        return json.dumps({"ConfigurationRecordersStatus": status})

    def put_configuration_recorder(self):  # type: ignore[no-untyped-def]
        # "The prefix AWSConfigurationRecorderFor is reserved for service-linked configuration recorders."
        # (https://docs.aws.amazon.com/config/latest/APIReference/API_PutConfigurationRecorder.html#API_PutConfigurationRecorder_Errors)
        name = (self._get_param("ConfigurationRecorder") or {}).get("name") or ""
        if name.startswith(prefix):
            raise JsonRESTError("InvalidConfigurationRecorderNameException",
                                f"The configuration recorder name is not valid. The prefix \"{prefix}\" is reserved "
                                "for service-linked configuration recorders.")
        return moto_put_recorder(self)

    config.ConfigResponse.put_service_linked_configuration_recorder = put_service_linked_configuration_recorder
    config.ConfigResponse.delete_service_linked_configuration_recorder = delete_service_linked_configuration_recorder
    config.ConfigResponse.describe_configuration_recorders = describe_configuration_recorders
    config.ConfigResponse.describe_configuration_recorder_status = describe_configuration_recorder_status
    config.ConfigResponse.put_configuration_recorder = put_configuration_recorder


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

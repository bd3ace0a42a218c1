"""CloudTrail: trails as AWS keeps them (buckets in other accounts, default selectors, home Regions, organization trails, selectors)."""

from __future__ import annotations

import json
import re

from assure_local.aws_request import Req, p
from assure_local.core import organization_of, replace
from assure_local.rules import Refusal, role_allows, trail_delivery_refusal, unusable_role


def patch_moto() -> None:
    """CloudTrail: trails as AWS keeps them (buckets in other accounts, default selectors, home Regions, organization trails, selectors)."""
    # CloudTrail: moto looks for the trail's bucket only in the trail's own account; AWS delivers to
    # a bucket in another account (the organization's logging account) when its policy allows it.
    from moto.cloudtrail import models as cloudtrail
    from moto.s3 import models as s3
    from moto.s3.exceptions import MissingBucket

    def check_bucket_exists(self):
        for account in list(s3.s3_backends.keys()):
            try:
                s3.s3_backends[account][self.partition].get_bucket(self.bucket_name)
                return
            except MissingBucket:
                continue
        raise cloudtrail.S3BucketDoesNotExistException(f"S3 bucket {self.bucket_name} does not exist!")

    replace(cloudtrail.Trail, "check_bucket_exists", check_bucket_exists)

    # CloudTrail: "trails created without specific event selectors will be configured to log all read
    # and write management events, and no data events"
    # (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_EventSelector.html). moto
    # starts a trail with no selector at all, which would mean it logs nothing.
    from moto.cloudtrail import models as cloudtrail_models

    trail_init = cloudtrail_models.Trail.__init__

    def default_selectors(self, *args, **kwargs):
        trail_init(self, *args, **kwargs)
        self.event_selectors = [{"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [],
                                 "ExcludeManagementEventSources": []}]

    replace(cloudtrail_models.Trail, "__init__", default_selectors)

    # CloudTrail: DeleteTrail takes "the name or the CloudTrail ARN of the trail", "must be called
    # from the Region in which the trail was created" and "cannot be called on the shadow trails"
    # (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_DeleteTrail.html): a shadow
    # answers InvalidHomeRegionException, an unknown trail TrailNotFoundException. moto deletes by
    # name only and answers success for anything else, so a delete by ARN left the trail logging.
    from moto.cloudtrail import exceptions as cloudtrail_errors

    class InvalidHomeRegionException(cloudtrail_errors.JsonRESTError):
        code = 400

        def __init__(self, message: str):
            super().__init__("InvalidHomeRegionException", message)

    def delete_trail(self, name: str) -> None:
        for key, trail in list(self.trails.items()):
            if name in (key, trail.arn):
                del self.trails[key]
                return
        for trail in self.describe_trails(include_shadow_trails=True):
            if name in (trail.trail_name, trail.arn):
                raise InvalidHomeRegionException(
                    f"This operation must be called from the Region in which the trail was created: {trail.region_name}")
        raise cloudtrail_errors.TrailNotFoundException(account_id=self.account_id, name=name)

    replace(cloudtrail_models.CloudTrailBackend, "delete_trail", delete_trail)

    # CloudTrail: an organization trail, created in the management account, is applied to every
    # member account, where members "can see the trail, but cannot modify or delete it"
    # (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html).
    # A member lists it as a shadow trail (DescribeTrails with includeShadowTrails, "the replication
    # of an organization trail in member accounts":
    # https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_DescribeTrails.html) and reads
    # its status and selectors by ARN; cloudtrail.cloudtrail_organization_trail refuses its changes. moto
    # keeps a trail in its creator's account only, so no member ever saw one.
    describe_trails = cloudtrail_models.CloudTrailBackend.describe_trails
    get_trail = cloudtrail_models.CloudTrailBackend.get_trail

    def organization_trails(backend) -> list:
        org = organization_of(backend.account_id)
        if org is None or org[0] == backend.account_id:
            return []
        return [t for b in cloudtrail_models.cloudtrail_backends[org[0]].values() for t in b.trails.values()
                if t.is_org_trail and (t.is_multi_region or t.region_name == backend.region_name)]

    def with_organization_trails(self, include_shadow_trails):
        own = list(describe_trails(self, include_shadow_trails))
        return own + organization_trails(self) if include_shadow_trails else own

    def get_own_or_organization_trail(self, name_or_arn):
        try:
            return get_trail(self, name_or_arn)
        except cloudtrail_errors.TrailNotFoundException:
            found = next((t for t in organization_trails(self) if t.arn == name_or_arn), None)
            if found is None:
                raise
            return found

    replace(cloudtrail_models.CloudTrailBackend, "describe_trails", with_organization_trails)
    replace(cloudtrail_models.CloudTrailBackend, "get_trail", get_own_or_organization_trail)

    # CloudTrail: ListTrails "lists trails that are in the current account", each with its home Region
    # (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_ListTrails.html): every
    # Region's, whichever Region answers, and the organization trails applied to the account. moto
    # listed this Region's trails and multi-Region ones only. DescribeTrails with a trailNameList
    # answers only those trails: a name matches "trails belonging only to the current Region and
    # current account", and "to return information about a trail in another Region, you must
    # specify its trail ARN" (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_DescribeTrails.html).
    # moto ignored the list and answered every trail.
    from moto.cloudtrail import responses as cloudtrail_responses

    def every_trail(backend) -> list:
        own = [t for b in cloudtrail_models.cloudtrail_backends[backend.account_id].values() for t in b.trails.values()]
        org = organization_of(backend.account_id)
        if org is None or org[0] == backend.account_id:
            return own
        return own + [t for b in cloudtrail_models.cloudtrail_backends[org[0]].values()
                      for t in b.trails.values() if t.is_org_trail]

    def list_trails(self):
        return json.dumps({"Trails": [t.short() for t in every_trail(self.cloudtrail_backend)]})

    def describe_named_trails(self):
        names = self._get_param("trailNameList") or []
        backend = self.cloudtrail_backend
        if names:
            everyone = every_trail(backend)
            found = [t for t in everyone if t.arn in names]
            found += [t for t in backend.trails.values() if t.trail_name in names and t not in found]
        else:
            found = backend.describe_trails(self._get_bool_param("includeShadowTrails", True))
        return json.dumps({"trailList": [t.description(include_region=True) for t in found]})

    replace(cloudtrail_responses.CloudTrailResponse, "list_trails", list_trails)
    replace(cloudtrail_responses.CloudTrailResponse, "describe_trails", describe_named_trails)

    # CloudTrail: PutInsightSelectors sets the trail's Insights types; an empty list turns Insights off
    # (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_PutInsightSelectors.html).
    # moto appends to what the trail had, so putting a selector twice doubled it.
    def put_insight_selectors(self, insight_selectors):
        self.insight_selectors = list(insight_selectors or [])

    replace(cloudtrail_models.Trail, "put_insight_selectors", put_insight_selectors)

    # CloudTrail: PutEventSelectors takes EventSelectors or AdvancedEventSelectors, never both, and the
    # one put overwrites the other; a selector reads back whole, with ReadWriteType (default All),
    # IncludeManagementEvents (default true), DataResources and ExcludeManagementEventSources
    # (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_PutEventSelectors.html,
    # https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_EventSelector.html). moto kept
    # the request as sent and left the other kind in place; it also took both kinds, and any number.
    class InvalidEventSelectorsException(cloudtrail_errors.JsonRESTError):
        code = 400

        def __init__(self, message: str):
            super().__init__("InvalidEventSelectorsException", message)

    def put_event_selectors(self, event_selectors, advanced_event_selectors):
        if (event_selectors and advanced_event_selectors) or len(event_selectors or []) > 5:
            raise InvalidEventSelectorsException(
                "The combination of event selectors or advanced event selectors and data resources is not valid. "
                "A trail can have up to 5 event selectors.")
        self.event_selectors = [{"ReadWriteType": e.get("ReadWriteType", "All"),
                                 "IncludeManagementEvents": e.get("IncludeManagementEvents", True),
                                 "DataResources": e.get("DataResources") or [],
                                 "ExcludeManagementEventSources": e.get("ExcludeManagementEventSources") or []}
                                for e in event_selectors or []]
        self.advanced_event_selectors = list(advanced_event_selectors or [])

    replace(cloudtrail_models.Trail, "put_event_selectors", put_event_selectors)


def cloudtrail_logs_delivery(req: Req, account: str, raw: bytes) -> Refusal | None:
    # CreateTrail/UpdateTrail with CloudWatch Logs delivery: the log group must exist, and CloudTrail must
    # be able to assume the role and create streams and put events in that group, or the call fails with
    # InvalidCloudWatchLogsLogGroupArnException / InvalidCloudWatchLogsRoleArnException
    # (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_CreateTrail.html; the role:
    # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/send-cloudtrail-events-to-cloudwatch-logs.html).
    if req.service != "cloudtrail" or req.operation not in ("CreateTrail", "UpdateTrail"):
        return None
    role, group = p(req.params, "CloudWatchLogsRoleArn"), p(req.params, "CloudWatchLogsLogGroupArn")
    if not role and not group:
        return None
    m = re.match(r"^arn:aws:logs:([a-z0-9-]+):(\d{12}):log-group:([^:]+)(:\*)?$", group or "")
    if not m:
        return Refusal(400, "InvalidCloudWatchLogsLogGroupArnException",
                       "You must specify a valid CloudWatch Logs log group ARN along with the role.")
    from moto.logs.models import logs_backends

    region, owner, name = m.group(1), m.group(2), m.group(3)
    if owner != account or name not in logs_backends[owner][region].groups:
        return Refusal(400, "InvalidCloudWatchLogsLogGroupArnException", f"Access denied. Check the log group: {group}")
    if not role:
        return Refusal(400, "InvalidCloudWatchLogsRoleArnException", "You must specify a role ARN along with the log group.")
    # CloudTrail assumes the role for the trail: aws:SourceArn is the trail's ARN (CreateTrail's Name
    # is a name; UpdateTrail's a name or an ARN).
    trail = str(p(req.params, "Name") or "")
    trail_arn = trail if trail.startswith("arn:") else f"arn:aws:cloudtrail:{req.region}:{account}:trail/{trail}"
    why = unusable_role("cloudtrail.amazonaws.com", role, trail_arn)
    stream = f"arn:aws:logs:{region}:{owner}:log-group:{name}:log-stream:{account}_CloudTrail_{region}"
    if why is None and not all(role_allows(role, a, stream) for a in ("logs:CreateLogStream", "logs:PutLogEvents")):
        why = f"{role} may not create log streams and put log events in {name}"
    if why:
        return Refusal(400, "InvalidCloudWatchLogsRoleArnException",
                       f"Access denied. Verify in IAM that the role has adequate permissions. ({why})")
    return None


def cloudtrail_organization_trail(req: Req, account: str, raw: bytes) -> Refusal | None:
    # An organization trail is created in the management account, with trusted access for CloudTrail
    # enabled in the organization (CloudTrailAccessNotEnabledException); an account that is not the
    # management account cannot make one (NotOrganizationMasterAccountException, "the AWS account making the request to create or update
    # an organization trail ... is not the management account for an organization";
    # https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_CreateTrail.html,
    # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html).
    if req.service != "cloudtrail":
        return None
    from assure_local.core import organization_of, trusted_access

    if req.operation in ("CreateTrail", "UpdateTrail") and p(req.params, "IsOrganizationTrail") is True:
        org = organization_of(account)
        if org is None or org[0] != account:
            return Refusal(400, "NotOrganizationMasterAccountException",
                           "The request was made by an account that is not the management account of the organization.")
        if not trusted_access(account, "cloudtrail.amazonaws.com"):
            return Refusal(400, "CloudTrailAccessNotEnabledException",
                           "Trusted access has not been enabled between CloudTrail and Organizations.")
    # A member's change to the trail is refused before this, by IAM: the trail is another account's
    # resource and trails have no resource-based policy.
    return None


def cloudtrail_delivery(req: Req, account: str, raw: bytes) -> Refusal | None:
    # CreateTrail/UpdateTrail check that CloudTrail can deliver: InsufficientS3BucketPolicyException,
    # KmsKeyNotFoundException, InsufficientEncryptionPolicyException, S3BucketDoesNotExistException
    # (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_CreateTrail.html).
    if req.service != "cloudtrail" or req.operation not in ("CreateTrail", "UpdateTrail"):
        return None
    from moto.cloudtrail.exceptions import TrailNotFoundException
    from moto.cloudtrail.models import cloudtrail_backends

    name = p(req.params, "Name") or ""
    bucket, prefix, key = p(req.params, "S3BucketName"), p(req.params, "S3KeyPrefix"), p(req.params, "KmsKeyId")
    if req.operation == "UpdateTrail":
        try:
            trail = cloudtrail_backends[account][req.region].get_trail(name)
        except TrailNotFoundException:
            return None  # moto answers TrailNotFoundException
        bucket, prefix = bucket or trail.bucket_name, prefix if prefix is not None else trail.s3_key_prefix
        key = key if key is not None else trail.kms_key_id
        name = trail.trail_name
    if not bucket:
        return None
    arn = f"arn:aws:cloudtrail:{req.region}:{account}:trail/{name}"
    refused = trail_delivery_refusal(account, req.region, arn, bucket, prefix, key)
    if refused is None:
        return None
    what, why = refused
    if what == "bucket":
        return Refusal(400, "S3BucketDoesNotExistException", f"S3 bucket {bucket} does not exist.")
    if what == "bucket-policy":
        return Refusal(400, "InsufficientS3BucketPolicyException",
                       f"Incorrect S3 bucket policy is detected for bucket: {bucket} ({why})")
    if what == "key":
        return Refusal(400, "KmsKeyNotFoundException", f"KMS key {key} not found ({why})")
    return Refusal(400, "InsufficientEncryptionPolicyException",
                   f"Insufficient permissions to access S3 bucket {bucket} or KMS key {key}. ({why})")

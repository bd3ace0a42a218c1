"""Seeds the local cloud with a demo organization, as an external account looks on the day it joins.

Management (the caller's account), logging and security accounts, and two external accounts with a
brownfield security setup of their own:
- GuardDuty detectors in two regions, members of a foreign administrator outside the organization;
- a running multi-region trail delivering to the account's own bucket;
- a Config recorder and delivery channel with custom names, recording, the channel encrypted with a key of
  the account's own;
- custom Session Manager preferences (SSM-SessionManagerRunShell);
- a root user with a password, as an account its owner signed up for has (/assure-api/root-credentials;
  accounts Organizations creates have none), for centralized root access to delete;
- a managed instance in the home Region (/assure-api/managed-instances) whose role, assure-demo-instance,
  has what the README documents for instance roles, so a Session Manager session's log can be followed
  to the logging bucket once assure has onboarded the account.
Every account gets the role assure assumes. Idempotent: a second run finds the same accounts.
Prints the account ids as JSON on stdout.
"""

import argparse
import json
import urllib.request

import boto3
from botocore.exceptions import ClientError

# The role AWS Organizations creates in every account it creates, trusting the management account.
ADMIN_ROLE = "OrganizationAccountAccessRole"
FOREIGN_ADMIN = "999988887777"
BROWNFIELD_REGIONS = ["us-east-1", "eu-west-1"]


def client(service, endpoint, region="us-east-1", creds=None):
    kw = {"endpoint_url": endpoint, "region_name": region}
    if creds:
        kw.update(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                  aws_session_token=creds.get("SessionToken"))
    else:
        kw.update(aws_access_key_id="testing", aws_secret_access_key="testing")
    return boto3.client(service, **kw)


def assume(endpoint, account, role=ADMIN_ROLE):
    """Credentials in a member account through the role Organizations created in it."""
    sts = client("sts", endpoint)
    arn = f"arn:aws:iam::{account}:role/{role}"
    return sts.assume_role(RoleArn=arn, RoleSessionName="assure-seed")["Credentials"]


def account_owner(endpoint, account):
    """An account outside the organization, as its owner (the local cloud's stand-in for signing in)."""
    req = urllib.request.Request(f"{endpoint}/assure-api/account-owner", method="POST",
                                 data=json.dumps({"account": account}).encode())
    with urllib.request.urlopen(req, timeout=30) as r:
        keys = json.loads(r.read())
    return {"AccessKeyId": keys["AccessKeyId"], "SecretAccessKey": keys["SecretAccessKey"], "SessionToken": None}


def root_password(endpoint, account):
    """The account's root user has a password (the local cloud's root user, root.py): a login profile,
    which centralized root access (IAMDeleteRootUserCredentials) deletes."""
    req = urllib.request.Request(f"{endpoint}/assure-api/root-credentials", method="POST",
                                 data=json.dumps({"account": account, "password": True}).encode())
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def enable_regions(endpoint, mgmt, members, regions):
    """`regions` enabled in the management account, every member (each through its
    OrganizationAccountAccessRole: the management account would need trusted access for the Account
    Management service to do it by AccountId) and the foreign GuardDuty administrator (by its
    owner), as an organization that works in them has done
    (https://docs.aws.amazon.com/accounts/latest/reference/API_EnableRegion.html). Regions enabled
    by default need nothing."""
    own = client("account", endpoint)
    opt_in = [r for r in regions if own.get_region_opt_status(RegionName=r)["RegionOptStatus"] != "ENABLED_BY_DEFAULT"]
    if not opt_in:
        return
    clients = [own, client("account", endpoint, creds=account_owner(endpoint, FOREIGN_ADMIN))]
    clients += [client("account", endpoint, creds=assume(endpoint, m)) for m in members if m != mgmt]
    for account in clients:
        for region in opt_in:
            account.enable_region(RegionName=region)


def ensure_org(endpoint, externals):
    org = client("organizations", endpoint)
    try:
        org.describe_organization()
    except ClientError as e:
        if e.response["Error"]["Code"] != "AWSOrganizationsNotInUseException":
            raise
        org.create_organization(FeatureSet="ALL")
    # Service control policies enabled in the root, as an organization that uses them has them
    # (assure attaches SCPs; AttachPolicy needs the type enabled).
    root = org.list_roots()["Roots"][0]
    if not any(t["Type"] == "SERVICE_CONTROL_POLICY" and t["Status"] == "ENABLED" for t in root.get("PolicyTypes", [])):
        org.enable_policy_type(RootId=root["Id"], PolicyType="SERVICE_CONTROL_POLICY")
    existing = {}
    for page in org.get_paginator("list_accounts").paginate():
        for a in page["Accounts"]:
            existing[a["Name"]] = a["Id"]
    ids = {}
    for name in ["logging", "security"] + [f"external-{i}" for i in range(1, externals + 1)]:
        if name in existing:
            ids[name] = existing[name]
            continue
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        ids[name] = status["AccountId"]
    mgmt = org.describe_organization()["Organization"]["MasterAccountId"]
    return mgmt, ids


def ensure_ou(endpoint, accounts):
    """The OU `Imported` under the root, holding the external accounts (for `onboard --ou`)."""
    org = client("organizations", endpoint)
    root = org.list_roots()["Roots"][0]["Id"]
    ous = {o["Name"]: o["Id"] for o in org.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]}
    ou = ous.get("Imported") or org.create_organizational_unit(ParentId=root, Name="Imported")["OrganizationalUnit"]["Id"]
    inside = {a["Id"] for a in org.list_accounts_for_parent(ParentId=ou)["Accounts"]}
    for account in accounts:
        if account not in inside:
            org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
    return ou


MEMBER_STACK_SET = "assure-member-role"
STACKSETS = "member.org.stacksets.cloudformation.amazonaws.com"


def ensure_member_role(endpoint, pipeline, accounts, template, region="us-east-1"):
    """The member role in every account of the organization, trusting the pipeline in account
    `pipeline`, from infra/member-role.template.json,
    through a service-managed StackSet on the root with automatic deployment, as the README's
    deployment does on AWS: trusted access for StackSets, the stack set, its instances; waits until
    every account in `accounts` has its instance (accounts that joined since get theirs from
    automatic deployment)."""
    import time

    org = client("organizations", endpoint)
    enabled = {s["ServicePrincipal"] for s in org.list_aws_service_access_for_organization()["EnabledServicePrincipals"]}
    if STACKSETS not in enabled:
        org.enable_aws_service_access(ServicePrincipal=STACKSETS)
    cf = client("cloudformation", endpoint, region)
    root = org.list_roots()["Roots"][0]["Id"]
    deadline = time.monotonic() + 30
    while True:
        try:
            cf.describe_stack_set(StackSetName=MEMBER_STACK_SET)
            break
        except ClientError as e:
            code = e.response["Error"]["Code"]
            # Trusted access reaches StackSets a moment after it is enabled.
            if "enable organizations access" in str(e) and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            if code != "StackSetNotFoundException":
                raise
        cf.create_stack_set(
            StackSetName=MEMBER_STACK_SET, TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": "PipelineAccount", "ParameterValue": pipeline}],
            Capabilities=["CAPABILITY_NAMED_IAM"], PermissionModel="SERVICE_MANAGED",
            AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False})
        cf.create_stack_instances(StackSetName=MEMBER_STACK_SET, Regions=[region],
                                  DeploymentTargets={"OrganizationalUnitIds": [root]})
        break
    # StackSets makes the instances one account after another: a second each is generous locally.
    bound = 120 + len(accounts)
    deadline = time.monotonic() + bound
    while True:
        instances = [i for page in cf.get_paginator("list_stack_instances").paginate(StackSetName=MEMBER_STACK_SET)
                     for i in page["Summaries"]]
        state = {i["Account"]: (i["StackInstanceStatus"]["DetailedStatus"], i.get("StatusReason")) for i in instances}
        failed = {a: s for a, s in state.items() if a in accounts and s[0] == "FAILED"}
        if failed:
            raise SystemExit(f"the member role's stack set failed: {failed}")
        if all(state.get(a, ("",))[0] == "SUCCEEDED" for a in accounts):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the member role's stack instances are not all there after {bound} s: {state}")
        time.sleep(0.2)


def onboarded(endpoint, account):
    """Whether assure has onboarded `account`: its SCPs are attached to it. The seed leaves such an
    account as it is (making it brownfield again would undo the onboarding, and its SCPs refuse it)."""
    org = client("organizations", endpoint)
    attached = org.list_policies_for_target(TargetId=account, Filter="SERVICE_CONTROL_POLICY")["Policies"]
    return any(p["Name"].startswith("assure-") for p in attached)


def brownfield(endpoint, account, creds, foreign):
    root_password(endpoint, account)
    # A trail of the account's own, logging to its own bucket.
    s3 = client("s3", endpoint, creds=creds)
    bucket = f"legacy-trail-{account}"
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)
    # CloudTrail's bucket policy (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html).
    trail_arn = f"arn:aws:cloudtrail:us-east-1:{account}:trail/legacy-audit"
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}},
        {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{account}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}}}]}))
    ct = client("cloudtrail", endpoint, creds=creds)
    if not ct.describe_trails(trailNameList=["legacy-audit"])["trailList"]:
        ct.create_trail(Name="legacy-audit", S3BucketName=bucket, IsMultiRegionTrail=True)
    ct.start_logging(Name="legacy-audit")

    iam = client("iam", endpoint, creds=creds)
    try:
        iam.get_role(RoleName="legacy-config-role")
    except ClientError:
        iam.create_role(RoleName="legacy-config-role", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}))
    role_arn = f"arn:aws:iam::{account}:role/legacy-config-role"
    config_bucket = f"legacy-config-{account}"
    try:
        s3.head_bucket(Bucket=config_bucket)
    except ClientError:
        s3.create_bucket(Bucket=config_bucket)

    for region in BROWNFIELD_REGIONS:
        # GuardDuty under a foreign administrator.
        gd = client("guardduty", endpoint, region, creds)
        detectors = gd.list_detectors()["DetectorIds"]
        detector = detectors[0] if detectors else gd.create_detector(Enable=True, FindingPublishingFrequency="SIX_HOURS")["DetectorId"]
        if "Administrator" not in gd.get_administrator_account(DetectorId=detector):
            fgd = client("guardduty", endpoint, region, foreign)
            fdet = fgd.list_detectors()["DetectorIds"]
            fdetector = fdet[0] if fdet else fgd.create_detector(Enable=True)["DetectorId"]
            fgd.create_members(DetectorId=fdetector, AccountDetails=[{"AccountId": account, "Email": f"{account}@example.com"}])
            fgd.invite_members(DetectorId=fdetector, AccountIds=[account])
            # The member finds the invitation in its own GuardDuty, as on AWS.
            invitation = next(i for i in list_invitations(endpoint, region, creds) if i["AccountId"] == FOREIGN_ADMIN)
            gd.accept_administrator_invitation(DetectorId=detector, AdministratorId=FOREIGN_ADMIN,
                                               InvitationId=invitation["InvitationId"])

        # A Config recorder and delivery channel under custom names.
        cfg = client("config", endpoint, region, creds)
        cfg.put_configuration_recorder(ConfigurationRecorder={
            "name": "legacy-recorder", "roleARN": role_arn,
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": region == "us-east-1"}})
        # Encrypted with a key of the account's own, delivering snapshots every six hours: settings a
        # rollback must write back.
        kms = client("kms", endpoint, region, creds)
        aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
        key_id = aliases.get("alias/legacy-config")
        if not key_id:
            key_id = kms.create_key(Description="legacy Config delivery")["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName="alias/legacy-config", TargetKeyId=key_id)
        key_arn = f"arn:aws:kms:{region}:{account}:key/{key_id}"
        cfg.put_delivery_channel(DeliveryChannel={
            "name": "legacy-channel", "s3BucketName": config_bucket, "s3KmsKeyArn": key_arn,
            "configSnapshotDeliveryProperties": {"deliveryFrequency": "Six_Hours"}})
        cfg.start_configuration_recorder(ConfigurationRecorderName="legacy-recorder")

        # Custom Session Manager preferences.
        ssm = client("ssm", endpoint, region, creds)
        content = {"schemaVersion": "1.0", "description": "legacy session preferences", "sessionType": "Standard_Stream",
                   "inputs": {"s3BucketName": f"legacy-ssm-{account}", "s3KeyPrefix": "sessions", "s3EncryptionEnabled": False,
                              "cloudWatchLogGroupName": "", "cloudWatchEncryptionEnabled": False, "kmsKeyId": "",
                              "runAsEnabled": False, "runAsDefaultUser": "", "idleSessionTimeout": "60"}}
        try:
            ssm.create_document(Name="SSM-SessionManagerRunShell", DocumentType="Session", DocumentFormat="JSON",
                                Content=json.dumps(content))
        except ClientError as e:
            if e.response["Error"]["Code"] != "DocumentAlreadyExists":
                raise


# The instance role's Session Manager permissions: the AWS managed policy AmazonSSMManagedInstanceCore
# where the cloud has it, else the minimal Session Manager permissions the user guide gives for an
# instance profile ("Creating an instance profile with minimal Session Manager permissions":
# https://docs.aws.amazon.com/systems-manager/latest/userguide/getting-started-create-iam-instance-profile.html).
INSTANCE_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
INSTANCE_ROLE = "assure-demo-instance"


def managed_instance(endpoint, account, region, creds, logging):
    """A managed instance of `account` in `region` (its SSM Agent online with the role
    assure-demo-instance), registered with the local cloud; the instance's ID.

    The role has, besides Session Manager's own permissions, what the README documents for instance
    roles once the account is onboarded (the session-manager step): s3:PutObject under the account's
    prefix of the logging bucket, s3:GetEncryptionConfiguration on the bucket, kms:GenerateDataKey on
    the logging key. The key does not exist before onboarding, so the grant names the logging
    account's keys in the home Region."""
    import hashlib

    iam = client("iam", endpoint, creds=creds)
    bucket = f"assure-logs-{logging}-{region}"
    try:
        iam.get_role(RoleName=INSTANCE_ROLE)
    except ClientError as e:
        if e.response["Error"]["Code"] != "NoSuchEntity":
            raise
        iam.create_role(RoleName=INSTANCE_ROLE, Description="assure demo: a managed instance's role",
                        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
        try:
            iam.attach_role_policy(RoleName=INSTANCE_ROLE, PolicyArn=INSTANCE_CORE)
        except ClientError as e:
            if e.response["Error"]["Code"] != "NoSuchEntity":
                raise
            iam.put_role_policy(RoleName=INSTANCE_ROLE, PolicyName="SessionManagerCore", PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
                    "ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"], "Resource": "*"}]}))
        iam.put_role_policy(RoleName=INSTANCE_ROLE, PolicyName="SessionLogs", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:PutObject",
                 "Resource": f"arn:aws:s3:::{bucket}/session-manager/{account}/*"},
                {"Effect": "Allow", "Action": "s3:GetEncryptionConfiguration", "Resource": f"arn:aws:s3:::{bucket}"},
                {"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": f"arn:aws:kms:{region}:{logging}:key/*"}]}))
    instance = "i-0" + hashlib.sha256(account.encode()).hexdigest()[:16]
    req = urllib.request.Request(f"{endpoint}/assure-api/managed-instances", method="POST", data=json.dumps(
        {"account": account, "region": region, "instanceId": instance, "roleName": INSTANCE_ROLE,
         # assure's delivery canary starts its session on an instance tagged so (README, "Proof of delivery").
         "tags": {"assure:canary": "true"}}).encode())
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
    return instance


def list_invitations(endpoint, region, creds):
    gd = client("guardduty", endpoint, region, creds)
    return gd.list_invitations()["Invitations"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--accounts", type=int, default=2, help="external accounts to create (brownfield)")
    parser.add_argument("--member-template", required=True, help="infra/member-role.template.json")
    parser.add_argument("--regions", default="", help="Regions to enable in every account, comma-separated: "
                        "opt-in Regions are disabled until an account enables them, as on AWS")
    parser.add_argument("--home-region", default="us-east-1",
                        help="the home Region runs will use: the external accounts' managed instances are there")
    args = parser.parse_args()
    endpoint = args.endpoint
    mgmt, ids = ensure_org(endpoint, args.accounts)
    enable_regions(endpoint, mgmt, list(ids.values()), [r for r in args.regions.split(",") if r])
    with open(args.member_template) as f:
        template = json.load(f)
    # The pipeline runs in the security account (README, "Deploying to a real organization").
    ensure_member_role(endpoint, ids["security"], list(ids.values()), template, args.home_region)
    foreign = account_owner(endpoint, FOREIGN_ADMIN)
    externals = [ids[f"external-{i}"] for i in range(1, args.accounts + 1)]
    instances = {}
    for account in externals:
        if not onboarded(endpoint, account):
            brownfield(endpoint, account, assume(endpoint, account), foreign)
        instances[account] = managed_instance(endpoint, account, args.home_region, assume(endpoint, account),
                                              ids["logging"])
    ou = ensure_ou(endpoint, externals)
    print(json.dumps({
        "management": mgmt,
        "logging": ids["logging"],
        "security": ids["security"],
        "external": externals,
        "importedOu": ou,
        "foreignGuardDutyAdministrator": FOREIGN_ADMIN,
        "brownfieldRegions": BROWNFIELD_REGIONS,
        "managedInstances": instances,
    }, indent=2))


if __name__ == "__main__":
    main()

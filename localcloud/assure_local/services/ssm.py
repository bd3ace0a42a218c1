"""AWS Systems Manager: Session Manager's StartSession needs a connected target and an existing document."""

from __future__ import annotations

import datetime
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from assure_local import authz, aws_request, core, policies, principals, resources, scheduler, ssm_agents
from assure_local.aws_request import Req, p
from assure_local.core import INSTANCES
from assure_local.events import log
from assure_local.rules import Refusal
from assure_local.ssm_agents import INSTANCE_ID, PING, agent, agent_refusal, instance_role, target_id


def ssm_start_session(req: Req, account: str, raw: bytes) -> Refusal | None:
    # StartSession, once authorized: a target that is not a managed node whose SSM Agent is online
    # with a control channel (ssm_agents.connected: registered with /assure-api/managed-instances,
    # its role usable) is TargetNotConnected, "The specified target managed node for the session isn't
    # fully configured for use with Session Manager"; a document of the account's that does not exist:
    # InvalidDocument, "The specified SSM document doesn't exist"
    # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_StartSession.html, Errors).
    # AWS's own documents (AWS-StartPortForwardingSession, …) exist in every account; moto has none.
    if req.service != "ssm" or req.operation != "StartSession":
        return None
    doc = p(req.params, "DocumentName")
    if isinstance(doc, str) and doc and doc != resources.DEFAULT_SESSION_DOCUMENT and not doc.startswith("arn:") \
            and not doc.lower().startswith(resources.AWS_DOCUMENT_PREFIXES):
        from moto.ssm.models import ssm_backends

        if doc not in ssm_backends[account][req.region]._documents:
            return Refusal(400, "InvalidDocument", "The specified document does not exist.")
    target = p(req.params, "Target") or ""

    if isinstance(target, str) and ssm_agents.connected(account, req.region, target):
        return None
    return Refusal(400, "TargetNotConnected", f"{target} is not connected.")


# Session ID -> the session (with private _account, _region, _prefs fields).
SESSIONS: dict[str, dict] = {}


PREFERENCES = "SSM-SessionManagerRunShell"


# Sessions that log nothing: "Logging isn't available for Session Manager sessions that connect
# through port forwarding or SSH" (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-logging.html).
UNLOGGED = ("AWS-StartPortForwardingSession", "AWS-StartPortForwardingSessionToRemoteHost", "AWS-StartSSHSession")


def information(inst: dict) -> dict:
    """An instance as DescribeInstanceInformation lists it
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformation.html)."""
    online = agent_refusal(inst, PING) is None
    hybrid = inst["instanceId"].startswith("mi-")
    out = {"InstanceId": inst["instanceId"], "PingStatus": "Online" if online else "ConnectionLost",
           "LastPingDateTime": time.time() if online else inst["registered"], "AgentVersion": "3.3.1142.0",
           "IsLatestVersion": True, "PlatformType": "Linux", "PlatformName": inst.get("platformName", "Amazon Linux"),
           "PlatformVersion": inst.get("platformVersion", "2023"), "IamRole": inst["roleName"],
           "ResourceType": "ManagedInstance" if hybrid else "EC2Instance",
           "ComputerName": inst.get("computerName", f"{inst['instanceId']}.local"), "IPAddress": "10.0.0.10",
           "AssociationStatus": "Success", "SourceId": inst["instanceId"],
           "SourceType": "AWS::SSM::ManagedInstance" if hybrid else "AWS::EC2::Instance"}
    if hybrid:
        out["RegistrationDate"] = inst["registered"]
    return out


def preferences(account: str, region: str, document: str) -> dict:
    """The inputs a session runs with: the account's SSM-SessionManagerRunShell preferences for a shell
    (no DocumentName, or that document), a Session document of the account's own its own inputs,
    nothing for port forwarding and SSH."""
    from moto.ssm.models import ssm_backends

    if document in UNLOGGED:
        return {}
    name = document if not document.lower().startswith(resources.AWS_DOCUMENT_PREFIXES) else PREFERENCES
    docs = ssm_backends[account][region]._documents.get(name)
    if docs is None:
        return {}
    try:
        content = docs.get_default_version().content
        doc = content if isinstance(content, dict) else json.loads(content)
    except (ValueError, TypeError):
        return {}
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    return dict(inputs) if isinstance(inputs, dict) else {}


def truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def bucket_region(bucket: str) -> str | None:
    from moto.s3.models import s3_backends

    owner = s3_backends.bucket_accounts.get(bucket)
    if owner is None:
        return None
    found = s3_backends[owner[1]][owner[0]].buckets.get(bucket)
    return getattr(found, "region_name", None) if found is not None else None


def session_failure(session: dict, inst: dict, caller: Any) -> str | None:
    """Why the session fails as it starts, or None: the session data key (kmsKeyId) the user's client
    cannot kms:GenerateDataKey with or the agent cannot kms:Decrypt with; or, with
    s3EncryptionEnabled, the bucket's encryption the agent cannot read ("Couldn't start the session
    because we are unable to validate encryption on Amazon S3 bucket")."""
    prefs = session["_prefs"]
    region = session["_region"]
    key_id = str(prefs.get("kmsKeyId") or "")
    if key_id and policies.enabled():
        key = resources.kms_key(region, session["_account"], key_id)
        if key is None:
            return f"KMSEncryption failed: key {key_id} does not exist"
        # The client asks for the data key with the session's encryption context, and the agent
        # decrypts it with the same (the Session Manager plugin's and agent's KMSEncryption handshake).
        context = {"aws:ssm:SessionId": session["SessionId"], "aws:ssm:TargetId": session["Target"]}
        for who, principal, action in (("client", caller, "GenerateDataKey"), ("instance", agent(inst), "Decrypt")):
            if principal is None:
                continue
            params = {"KeyId": key.arn, "EncryptionContext": context}
            denial = authz.authorize(principal, aws_request.Req("kms", action, params, key.arn.split(":")[3]))
            if denial is not None:
                return f"KMSEncryption failed on {who}: AccessDeniedException: {denial.message}"
    bucket = str(prefs.get("s3BucketName") or "")
    if bucket and truthy(prefs.get("s3EncryptionEnabled")):
        where = bucket_region(bucket)
        if where is None:
            return ("Couldn't start the session because we are unable to validate encryption on Amazon S3 bucket. "
                    f"Error: NoSuchBucket: The specified bucket does not exist ({bucket})")
        if policies.enabled():
            req = aws_request.Req("s3", "GetBucketEncryption", {}, where, "GET", f"/{bucket}", {"encryption": [""]}, {})
            denial = authz.authorize(agent(inst), req)
            if denial is not None:
                return ("Couldn't start the session because we are unable to validate encryption on Amazon S3 bucket. "
                        f"Error: AccessDenied: {denial.message}")
        # A bucket with no encryption configuration of its own is encrypted with SSE-S3: "By default,
        # all buckets have a default encryption configuration that uses server-side encryption with
        # Amazon S3 managed keys (SSE-S3)" (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketEncryption.html),
        # so no bucket fails the agent's check for want of encryption.
    return None


def s3_path(prefix: str, name: str) -> str:
    """The agent's fileutil.BuildS3Path: the prefix and the name joined by one slash."""
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def upload_log(session_id: str) -> None:
    """The agent uploads the session's log as the instance role when the session ends
    (`finishLogging`: `PREFIX/SESSIONID.log`, Content-Type text/plain, the bucket's default
    encryption). A refused upload is only in the agent's own log on AWS; here it is also the session's
    Details. The session's OutputUrl names the object either way, as the agent reports it."""
    session = SESSIONS.get(session_id)
    inst = INSTANCES.get((session["_account"], session["_region"], session["Target"])) if session else None
    if session is None:
        return
    prefs = session["_prefs"]
    bucket = str(prefs.get("s3BucketName") or "")
    if not bucket:
        return
    key = s3_path(str(prefs.get("s3KeyPrefix") or ""), f"{session_id}.log")
    where = bucket_region(bucket)
    why = None
    if where is None:
        why = f"NoSuchBucket: The specified bucket does not exist ({bucket})"
    elif inst is None:
        why = "the instance is no longer registered"
    elif policies.enabled():
        req = aws_request.Req("s3", "PutObject", {}, where, "PUT", f"/{bucket}/{key}", {}, {"content-type": "text/plain"})
        role = instance_role(inst)
        denial = authz.authorize(agent(inst), req) if role is not None else None
        if role is None:
            why = f"role {inst['roleName']} does not exist"
        elif denial is not None:
            why = f"AccessDenied: {denial.message}"
    session["OutputUrl"] = {"S3OutputUrl": f"https://s3.{where or session['_region']}.amazonaws.com/{bucket}/{key}",
                            "CloudWatchOutputUrl": ""}
    if why is not None:
        session["Details"] = f"Failed to upload session log to s3://{bucket}/{key}: {why}"
        log(f"session {session_id}: {session['Details']}")
        return
    started = datetime.datetime.fromtimestamp(session["StartDate"], datetime.UTC)
    text = (f"Script started on {started:%Y-%m-%d %H:%M:%S+0000}\n"
            f"[session {session_id} on {session['Target']} by {session['Owner']}]\n"
            f"sh-5.2$ exit\nexit\n").encode()
    scheduler.put_object(bucket, key, text, None, "text/plain")


def ssm_error(start_response: Callable, code: str, message: str, status: int = 400) -> list[bytes]:

    return core.respond(start_response, status, {"__type": code, "message": message}, error=code)


def caller_of(environ: dict, cred: Any) -> Any:

    return principals.principal_for(cred.key, core.session_token(environ))


def start_session(account: str, region: str, body: dict, caller: Any) -> dict:
    """StartSession, once authorized and validated (ssm.ssm_start_session found the target
    connected): the session, its ID `NAME-RANDOM` (the caller's user or role session name)."""
    target = target_id(str(body.get("Target") or ""))
    inst = INSTANCES[(account, region, target)]
    name = "root"
    if caller is not None and caller.kind == "role":
        name = caller.session_arn.rsplit("/", 1)[-1]
    elif caller is not None and caller.kind == "user":
        name = caller.arn.rsplit("/", 1)[-1]
    session_id = f"{name}-{uuid.uuid4().hex[:17]}"
    document = str(body.get("DocumentName") or PREFERENCES)
    session = {"SessionId": session_id, "Target": target, "Status": "Connected", "StartDate": time.time(),
               "DocumentName": document, "Owner": caller.shown() if caller is not None else f"arn:aws:iam::{account}:root",
               "MaxSessionDuration": "", "AccessType": "Standard", "_account": account, "_region": region,
               "_prefs": preferences(account, region, document)}
    if body.get("Reason"):
        session["Reason"] = str(body["Reason"])
    SESSIONS[session_id] = session
    why = session_failure(session, inst, caller)
    if why is not None:
        session.update(Status="Failed", EndDate=time.time(), Details=why)
        log(f"session {session_id}: {why}")
    return {"SessionId": session_id, "TokenValue": uuid.uuid4().hex + uuid.uuid4().hex,
            "StreamUrl": f"wss://ssmmessages.{region}.amazonaws.com/v1/data-channel/{session_id}?role=publish_subscribe"}


def terminate_session(account: str, region: str, body: dict) -> dict:
    """TerminateSession: the session ends; the agent then uploads its log (after the delay)."""
    session_id = str(body.get("SessionId") or "")
    session = SESSIONS.get(session_id)
    if session is not None and (session["_account"], session["_region"]) == (account, region) \
            and session["Status"] in ("Connected", "Connecting", "Disconnected"):
        session.update(Status="Terminated", EndDate=time.time())
        scheduler.later(scheduler.delay(), lambda: upload_log(session_id))
    return {"SessionId": session_id}


ACTIVE_STATES = ("Connected", "Connecting", "Disconnected", "Terminating")


def describe_sessions(account: str, region: str, body: dict) -> dict:
    """DescribeSessions: State Active (Connected, Connecting, Disconnected, Terminating) or History
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeSessions.html)."""
    state = body.get("State")
    if state not in ("Active", "History"):
        raise ValueError("State must be Active or History")
    items = []
    for s in SESSIONS.values():
        if (s["_account"], s["_region"]) != (account, region):
            continue
        if (s["Status"] in ACTIVE_STATES) != (state == "Active"):
            continue
        ok = True
        for f in body.get("Filters") or []:
            key, value = f.get("key"), str(f.get("value", ""))
            if key == "InvokedAfter":
                ok = ok and s["StartDate"] >= parse_date(value)
            elif key == "InvokedBefore":
                ok = ok and s["StartDate"] <= parse_date(value)
            elif key in ("Target", "Owner", "Status", "SessionId", "AccessType"):
                ok = ok and str(s.get(key, "")) == value
        if ok:
            items.append({k: v for k, v in s.items() if not k.startswith("_") and v != ""})
    items.sort(key=lambda s: -s["StartDate"])

    return core.paged(items, "Sessions", body.get("NextToken"), body.get("MaxResults"), 20, "NextToken")


def parse_date(value: str) -> float:
    try:
        return datetime.datetime.fromisoformat(value).timestamp()
    except ValueError:
        return float(value)


def describe_instance_information(account: str, region: str, body: dict) -> dict:
    wanted: dict[str, list[str]] = {}
    for f in body.get("Filters") or []:
        wanted[str(f.get("Key"))] = [str(v) for v in f.get("Values") or []]
    for f in body.get("InstanceInformationFilterList") or []:
        wanted[str(f.get("key"))] = [str(v) for v in f.get("valueSet") or []]
    fields = {"InstanceIds": "InstanceId", "PingStatus": "PingStatus", "ResourceType": "ResourceType",
              "IamRole": "IamRole", "PlatformTypes": "PlatformType", "AgentVersion": "AgentVersion",
              "AssociationStatus": "AssociationStatus"}
    # Filters by tag: "tag-key" (any of the keys) and "tag:KEY" (any of the values)
    # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformationStringFilter.html).
    def tagged(inst: dict, key: str, values: list[str]) -> bool | None:
        tags = inst.get("tags") or {}
        if key == "tag-key":
            return any(v in tags for v in values)
        if key.startswith("tag:"):
            return tags.get(key[4:]) in values
        return None

    items = []
    for (acct, reg, _), inst in sorted(INSTANCES.items()):
        if (acct, reg) != (account, region):
            continue
        info = information(inst)
        if all(str(info.get(fields.get(k, k), "")) in v if tagged(inst, k, v) is None else tagged(inst, k, v)
               for k, v in wanted.items() if v):
            items.append(info)

    return core.paged(items, "InstanceInformationList", body.get("NextToken"), body.get("MaxResults"), 50,
                           "NextToken")


SSM_OPERATIONS = {"StartSession", "TerminateSession", "DescribeSessions", "DescribeInstanceInformation"}


def answer(environ: dict, start_response: Callable, cred: Any) -> list[bytes] | None:
    """The extension's hook: /assure-api/managed-instances, and the Session Manager operations (once
    authorized and validated), or None for anything else."""

    if environ.get("PATH_INFO") == "/assure-api/managed-instances":
        return managed_instances_api(environ, start_response)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if cred is None or cred.service != "ssm" or not target.startswith("AmazonSSM."):
        return None
    operation = target.split(".", 1)[1]
    if operation not in SSM_OPERATIONS:
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return ssm_error(start_response, "ValidationException", "The request body is not JSON.")
    from moto.iam.models import get_account_id_from

    account, region = get_account_id_from(cred.key), cred.region
    with core.LOCK:
        try:
            if operation == "StartSession":
                out = start_session(account, region, body, caller_of(environ, cred))
            elif operation == "TerminateSession":
                out = terminate_session(account, region, body)
            elif operation == "DescribeSessions":
                out = describe_sessions(account, region, body)
            else:
                out = describe_instance_information(account, region, body)
        except ValueError as e:
            return ssm_error(start_response, "ValidationException", str(e))
        except KeyError:
            return ssm_error(start_response, "TargetNotConnected", f"{body.get('Target')} is not connected.")
    return core.respond(start_response, 200, out)


def managed_instances_api(environ: dict, start_response: Callable) -> list[bytes]:
    """POST {"account", "region", "instanceId" (i-… or mi-…), "roleName"}: registers a managed instance
    whose SSM Agent runs with that role of the account (the local cloud's stand-in for an instance with
    an instance profile, or a hybrid activation); GET ?account=&region=: the registrations; DELETE
    ?account=&region=&instanceId=: deregisters one. Local only, like /assure-api/account-owner."""
    from moto.iam.models import iam_backends


    respond = core.respond
    method = environ.get("REQUEST_METHOD", "GET")
    doc = core.api_doc(environ)
    if doc is None:
        return respond(start_response, 400, {"message": "a JSON object"}, error="ValidationError")
    account, region = str(doc.get("account", "")), str(doc.get("region", ""))
    with core.LOCK:
        if method == "GET":
            items = [dict(i) for (a, r, _), i in sorted(INSTANCES.items())
                     if (not account or a == account) and (not region or r == region)]
            return respond(start_response, 200, {"instances": items})
        instance_id = str(doc.get("instanceId", ""))
        if not re.fullmatch(r"\d{12}", account) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region) \
                or not INSTANCE_ID.fullmatch(instance_id):
            return respond(start_response, 400, {"message": "account: 12 digits; region: a Region; instanceId: i-… or mi-…"},
                           error="ValidationError")
        if method == "DELETE":
            found = INSTANCES.pop((account, region, instance_id), None)
            return respond(start_response, 200 if found else 404, {"deleted": found is not None},
                           error=None if found else "NotFound")
        if method != "POST":
            return respond(start_response, 400, {"message": "GET, POST or DELETE"}, error="ValidationError")
        role = str(doc.get("roleName", ""))
        if not any(r.name == role for r in iam_backends[account]["aws"].roles.values()):
            return respond(start_response, 404, {"message": f"no role {role} in account {account}"}, error="NoSuchEntity")
        inst = {"account": account, "region": region, "instanceId": instance_id, "roleName": role,
                "registered": time.time()}
        for k in ("platformName", "platformVersion", "computerName"):
            if doc.get(k):
                inst[k] = str(doc[k])
        # The instance's tags, which DescribeInstanceInformation's tag filters read.
        tags = doc.get("tags") or {}
        if not isinstance(tags, dict):
            return respond(start_response, 400, {"message": "tags: an object of key to value"}, error="ValidationError")
        inst["tags"] = {str(k): str(v) for k, v in tags.items()}
        INSTANCES[(account, region, instance_id)] = inst
        return respond(start_response, 200, dict(inst, pingStatus=information(inst)["PingStatus"]))

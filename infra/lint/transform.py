"""The pipeline template as CloudFormation deploys it: packaged, then through the SAM transform.

Usage: transform.py TEMPLATE OUT

cfn-lint, checkov and parliament must read what CloudFormation creates, not only what we write:
Lambda's own checks (an event source mapping's queue visibility timeout against the function's
timeout, cfn-lint E3505) apply to the AWS::Lambda::EventSourceMapping resources the transform makes
of each function's `Events`, which the untransformed template does not have.

1. `aws cloudformation package` uploads each local `CodeUri` and `DefinitionUri` and writes its
   S3 URI in their place; here every one becomes `s3://assure-artifacts/LOGICAL-ID` (the transform
   requires an S3 URI; what is behind it does not change what the transform makes).
2. aws-sam-translator (pinned in infra/requirements-lint.txt), the library CloudFormation's
   `AWS::Serverless-2016-10-31` transform is built from, in us-east-1, with no AWS managed policy
   looked up (the template names none by name).
"""

from __future__ import annotations

import json
import os
import sys

# The transform reads the region for ARNs it builds; it needs no credentials.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.translator.transform import transform  # noqa: E402


class NoManagedPolicies:
    """The managed policy loader: the template names no AWS managed policy by name."""

    def load(self) -> dict:
        return {}


def packaged(template: dict) -> dict:
    """What `aws cloudformation package` leaves: local artifact paths replaced by S3 URIs."""
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "DefinitionUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://assure-artifacts/{name}"
    return template


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1]) as f:
        template = json.load(f)
    out = transform(packaged(template), {}, NoManagedPolicies())
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

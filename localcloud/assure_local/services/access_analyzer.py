"""IAM Access Analyzer, which moto lacks: analyzers (CREATING, then ACTIVE), their findings and archive rules."""

from __future__ import annotations

import re
from typing import ClassVar

from assure_local.core import (
    ApiError,
    Call,
    delegated_admin,
    final_at,
    now,
    organization_of,
    page,
    transitional,
    trusted_access,
)


class AccessAnalyzer:
    PRINCIPAL = "access-analyzer.amazonaws.com"

    def __init__(self) -> None:
        # (account, region) -> analyzer name -> analyzer
        self.analyzers: dict[tuple[str, str], dict[str, dict]] = {}
        # (account, region, analyzer) -> rule name -> rule
        self.rules: dict[tuple[str, str, str], dict[str, dict]] = {}

    routes: ClassVar[list[tuple[str, str, str]]] = [
        ("PUT", r"/analyzer", "create_analyzer"),
        ("GET", r"/analyzer", "list_analyzers"),
        ("GET", r"/analyzer/(?P<name>[^/]+)", "get_analyzer"),
        ("DELETE", r"/analyzer/(?P<name>[^/]+)", "delete_analyzer"),
        ("PUT", r"/analyzer/(?P<name>[^/]+)/archive-rule", "create_archive_rule"),
        ("GET", r"/analyzer/(?P<name>[^/]+)/archive-rule", "list_archive_rules"),
    ]

    @staticmethod
    def validation(message: str, field: str) -> ApiError:
        return ApiError(400, "ValidationException", message, reason="fieldValidationFailed",
                        fieldList=[{"name": field, "message": message}])

    def _get(self, call: Call, name: str) -> dict:
        analyzer = self.analyzers.get((call.account, call.region), {}).get(name)
        if analyzer is None:
            raise ApiError(404, "ResourceNotFoundException", f"Analyzer {name} not found",
                           resourceId=name, resourceType="Analyzer")
        return analyzer

    def create_analyzer(self, call: Call) -> dict:
        name = call.body.get("analyzerName") or ""
        kind = call.body.get("type") or ""
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,254}", name):
            raise self.validation("analyzerName is not valid", "analyzerName")
        if kind not in ("ACCOUNT", "ORGANIZATION", "ACCOUNT_UNUSED_ACCESS", "ORGANIZATION_UNUSED_ACCESS"):
            raise self.validation("type is not valid", "type")
        analyzers = self.analyzers.setdefault((call.account, call.region), {})
        if name in analyzers:
            raise ApiError(409, "ConflictException", f"Analyzer {name} already exists",
                           resourceId=name, resourceType="Analyzer")
        if kind.startswith("ORGANIZATION"):
            org = organization_of(call.account)
            if org is None or not trusted_access(call.account, self.PRINCIPAL):
                raise self.validation(
                    "trusted access for access-analyzer.amazonaws.com is not enabled in the organization", "type")
            if org[0] != call.account and not delegated_admin(call.account, self.PRINCIPAL):
                raise ApiError(403, "AccessDeniedException",
                               "only the management account or the delegated administrator can create an organization analyzer")
        partition = "aws"
        analyzer = {
            "arn": f"arn:{partition}:access-analyzer:{call.region}:{call.account}:analyzer/{name}",
            "name": name,
            "type": kind,
            "createdAt": now(),
            "tags": call.body.get("tags") or {},
            # CREATING until the transition ends, then ACTIVE (view).
            "_final": final_at(),
        }
        analyzers[name] = analyzer
        for rule in call.body.get("archiveRules") or []:
            self._put_rule(call, name, rule.get("ruleName", ""), rule.get("filter") or {})
        return {"arn": analyzer["arn"]}

    @staticmethod
    def view(analyzer: dict) -> dict:
        """An analyzer as GetAnalyzer and ListAnalyzers show it: CREATING "when the analyzer creation is
        in progress", then ACTIVE (https://docs.aws.amazon.com/access-analyzer/latest/APIReference/API_AnalyzerSummary.html).
        The API reference names no operation refused while an analyzer is CREATING (CreateArchiveRule,
        ListArchiveRules, DeleteAnalyzer list no such error), so none is refused here."""
        out = {k: v for k, v in analyzer.items() if not k.startswith("_")}
        out["status"] = "CREATING" if transitional(analyzer.get("_final")) else "ACTIVE"
        return out

    def list_analyzers(self, call: Call) -> dict:
        items = [self.view(a) for a in self.analyzers.get((call.account, call.region), {}).values()]
        kind = call.q("type")
        if kind:
            items = [a for a in items if a["type"] == kind]
        return page(items, call, "analyzers")

    def get_analyzer(self, call: Call, name: str) -> dict:
        return {"analyzer": self.view(self._get(call, name))}

    def delete_analyzer(self, call: Call, name: str) -> dict:
        self._get(call, name)
        del self.analyzers[(call.account, call.region)][name]
        self.rules.pop((call.account, call.region, name), None)
        return {}

    def _put_rule(self, call: Call, analyzer: str, rule_name: str, filter_: dict) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,254}", rule_name):
            raise self.validation("ruleName is not valid", "ruleName")
        rules = self.rules.setdefault((call.account, call.region, analyzer), {})
        if rule_name in rules:
            raise ApiError(409, "ConflictException", f"Archive rule {rule_name} already exists",
                           resourceId=rule_name, resourceType="ArchiveRule")
        rules[rule_name] = {"ruleName": rule_name, "filter": filter_, "createdAt": now(), "updatedAt": now()}

    def create_archive_rule(self, call: Call, name: str) -> dict:
        self._get(call, name)
        self._put_rule(call, name, call.body.get("ruleName", ""), call.body.get("filter") or {})
        return {}

    def list_archive_rules(self, call: Call, name: str) -> dict:
        self._get(call, name)
        return page(list(self.rules.get((call.account, call.region, name), {}).values()), call, "archiveRules")

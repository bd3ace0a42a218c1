//! CIS v7.0.0 section 5's metric filters, and the filters scanners look for (Prowler's patterns, tested).

use assure_contract::catalogue::Entry;

use super::catalogue;

/// (catalogue entry, short name, CIS filter pattern). Patterns as the CIS AWS Foundations Benchmark
/// v7.0.0 gives them in each section 5 recommendation's audit procedure (step 3), in CloudWatch
/// Logs' syntax (values with spaces or wildcards quoted); a test compares them word for word.
pub const FILTERS: &[(&Entry, &str, &str)] = &[
    (
        &catalogue::UNAUTHORIZED_API_CALLS,
        "unauthorized-api-calls",
        r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") && ($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket") }"#,
    ),
    (
        &catalogue::CONSOLE_WITHOUT_MFA,
        "console-signin-without-mfa",
        r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
    ),
    (
        &catalogue::ROOT_USAGE,
        "root-account-usage",
        r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#,
    ),
    (
        &catalogue::IAM_POLICY_CHANGES,
        "iam-policy-changes",
        r#"{ ($.eventName = DeleteGroupPolicy) || ($.eventName = DeleteRolePolicy) || ($.eventName = DeleteUserPolicy) || ($.eventName = PutGroupPolicy) || ($.eventName = PutRolePolicy) || ($.eventName = PutUserPolicy) || ($.eventName = CreatePolicy) || ($.eventName = DeletePolicy) || ($.eventName = CreatePolicyVersion) || ($.eventName = DeletePolicyVersion) || ($.eventName = AttachRolePolicy) || ($.eventName = DetachRolePolicy) || ($.eventName = AttachUserPolicy) || ($.eventName = DetachUserPolicy) || ($.eventName = AttachGroupPolicy) || ($.eventName = DetachGroupPolicy) }"#,
    ),
    (
        &catalogue::CLOUDTRAIL_CHANGES,
        "cloudtrail-configuration-changes",
        r#"{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging) }"#,
    ),
    (
        &catalogue::CONSOLE_AUTH_FAILURES,
        "console-authentication-failures",
        r#"{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }"#,
    ),
    (
        &catalogue::CMK_DISABLE_OR_DELETION,
        "cmk-disable-or-scheduled-deletion",
        r#"{ ($.eventSource = kms.amazonaws.com) && (($.eventName = DisableKey) || ($.eventName = ScheduleKeyDeletion)) }"#,
    ),
    (
        &catalogue::S3_BUCKET_POLICY_CHANGES,
        "s3-bucket-policy-changes",
        r#"{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || ($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || ($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || ($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || ($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }"#,
    ),
    (
        &catalogue::CONFIG_CHANGES,
        "config-configuration-changes",
        r#"{ ($.eventSource = config.amazonaws.com) && (($.eventName = StopConfigurationRecorder) || ($.eventName = DeleteDeliveryChannel) || ($.eventName = PutDeliveryChannel) || ($.eventName = PutConfigurationRecorder)) }"#,
    ),
    (
        &catalogue::SECURITY_GROUP_CHANGES,
        "security-group-changes",
        r#"{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) || ($.eventName = ModifySecurityGroupRules) }"#,
    ),
    (
        &catalogue::NACL_CHANGES,
        "nacl-changes",
        r#"{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || ($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || ($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }"#,
    ),
    (
        &catalogue::NETWORK_GATEWAY_CHANGES,
        "network-gateway-changes",
        r#"{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || ($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || ($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }"#,
    ),
    (
        &catalogue::ROUTE_TABLE_CHANGES,
        "route-table-changes",
        r#"{ ($.eventSource = ec2.amazonaws.com) && ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }"#,
    ),
    (
        &catalogue::VPC_CHANGES,
        "vpc-changes",
        r#"{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || ($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || ($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || ($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || ($.eventName = EnableVpcClassicLink) }"#,
    ),
    (
        &catalogue::ORGANIZATIONS_CHANGES,
        "organizations-changes",
        r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }"#,
    ),
];

/// The scanners users run against an account check these filters with rules of their own, which
/// the benchmark's text alone does not always satisfy (a test applies each scanner's rule to
/// [`FILTERS`] and these). Each is a second filter, with its own alarm on the same topic, for the
/// same control; its events also raise the benchmark's alarm, so they notify twice.
/// (catalogue entry, short name, pattern, which scanner and why).
pub const SCANNER_FILTERS: &[(&Entry, &str, &str, &str)] = &[
    (
        &catalogue::UNAUTHORIZED_API_CALLS,
        "unauthorized-api-calls-cis-v1",
        r#"{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }"#,
        "AWS Security Hub CloudWatch.2 requires the CIS v1.2.0 pattern exactly, without v7.0.0's exclusions",
    ),
    (
        &catalogue::SECURITY_GROUP_CHANGES,
        "security-group-changes-cis-v1",
        r#"{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }"#,
        "AWS Security Hub CloudWatch.10 requires the CIS v1.2.0 pattern exactly, without ModifySecurityGroupRules",
    ),
    (
        &catalogue::ROUTE_TABLE_CHANGES,
        "route-table-changes-cis-v1",
        r#"{ ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }"#,
        "AWS Security Hub CloudWatch.13 requires the CIS v1.2.0 pattern exactly, without the event source",
    ),
    (
        &catalogue::ORGANIZATIONS_CHANGES,
        "organizations-changes-all",
        r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CancelHandshake") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganization") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnableAllFeatures") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }"#,
        "Prowler's cloudwatch_log_metric_filter_aws_organizations_changes also wants CancelHandshake, CreateOrganization and EnableAllFeatures",
    ),
];

/// Every filter assure keeps: (catalogue entry, short name, pattern).
pub fn all_filters() -> impl Iterator<Item = (&'static Entry, &'static str, &'static str)> {
    FILTERS.iter().copied().chain(SCANNER_FILTERS.iter().map(|(c, n, p, _)| (*c, *n, *p)))
}

#[cfg(test)]
mod tests {
    use super::{all_filters, catalogue, FILTERS};

    /// Prowler's checks of the monitoring section and the regular expression each applies to a
    /// filter's pattern (`re.search(regex, pattern, flags=re.DOTALL)`), from
    /// prowler-cloud/prowler at 3e000faa3109230b748e4418a13c11c9e59f5cfb,
    /// `prowler/providers/aws/services/cloudwatch/`. A check passes when one filter matches.
    const PROWLER: &[(&str, &str)] = &[
        (
            "cloudwatch_changes_to_network_acls_alarm_configured",
            r#"(?=.*\$\.eventName\s*=\s*.?CreateNetworkAcl\b)(?=.*\$\.eventName\s*=\s*.?CreateNetworkAclEntry\b)(?=.*\$\.eventName\s*=\s*.?DeleteNetworkAcl\b)(?=.*\$\.eventName\s*=\s*.?DeleteNetworkAclEntry\b)(?=.*\$\.eventName\s*=\s*.?ReplaceNetworkAclEntry\b)(?=.*\$\.eventName\s*=\s*.?ReplaceNetworkAclAssociation\b)"#,
        ),
        (
            "cloudwatch_changes_to_network_gateways_alarm_configured",
            r#"(?=.*\$\.eventName\s*=\s*.?CreateCustomerGateway\b)(?=.*\$\.eventName\s*=\s*.?DeleteCustomerGateway\b)(?=.*\$\.eventName\s*=\s*.?AttachInternetGateway\b)(?=.*\$\.eventName\s*=\s*.?CreateInternetGateway\b)(?=.*\$\.eventName\s*=\s*.?DeleteInternetGateway\b)(?=.*\$\.eventName\s*=\s*.?DetachInternetGateway\b)"#,
        ),
        (
            "cloudwatch_changes_to_network_route_tables_alarm_configured",
            r#"(?=.*\$\.eventSource\s*=\s*.?ec2\.amazonaws\.com)(?=.*\$\.eventName\s*=\s*.?CreateRoute\b)(?=.*\$\.eventName\s*=\s*.?CreateRouteTable\b)(?=.*\$\.eventName\s*=\s*.?ReplaceRoute\b)(?=.*\$\.eventName\s*=\s*.?ReplaceRouteTableAssociation\b)(?=.*\$\.eventName\s*=\s*.?DeleteRouteTable\b)(?=.*\$\.eventName\s*=\s*.?DeleteRoute\b)(?=.*\$\.eventName\s*=\s*.?DisassociateRouteTable\b)"#,
        ),
        (
            "cloudwatch_changes_to_vpcs_alarm_configured",
            r#"(?=.*\$\.eventName\s*=\s*.?CreateVpc\b)(?=.*\$\.eventName\s*=\s*.?DeleteVpc\b)(?=.*\$\.eventName\s*=\s*.?ModifyVpcAttribute\b)(?=.*\$\.eventName\s*=\s*.?AcceptVpcPeeringConnection\b)(?=.*\$\.eventName\s*=\s*.?CreateVpcPeeringConnection\b)(?=.*\$\.eventName\s*=\s*.?DeleteVpcPeeringConnection\b)(?=.*\$\.eventName\s*=\s*.?RejectVpcPeeringConnection\b)(?=.*\$\.eventName\s*=\s*.?AttachClassicLinkVpc\b)(?=.*\$\.eventName\s*=\s*.?DetachClassicLinkVpc\b)(?=.*\$\.eventName\s*=\s*.?DisableVpcClassicLink\b)(?=.*\$\.eventName\s*=\s*.?EnableVpcClassicLink\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_and_alarm_for_aws_config_configuration_changes_enabled",
            r#"(?=.*\$\.eventSource\s*=\s*.?config\.amazonaws\.com)(?=.*\$\.eventName\s*=\s*.?StopConfigurationRecorder\b)(?=.*\$\.eventName\s*=\s*.?DeleteDeliveryChannel\b)(?=.*\$\.eventName\s*=\s*.?PutDeliveryChannel\b)(?=.*\$\.eventName\s*=\s*.?PutConfigurationRecorder\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_and_alarm_for_cloudtrail_configuration_changes_enabled",
            r#"(?=.*\$\.eventName\s*=\s*.?CreateTrail\b)(?=.*\$\.eventName\s*=\s*.?UpdateTrail\b)(?=.*\$\.eventName\s*=\s*.?DeleteTrail\b)(?=.*\$\.eventName\s*=\s*.?StartLogging\b)(?=.*\$\.eventName\s*=\s*.?StopLogging\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_authentication_failures",
            r#"(?=.*\$\.eventName\s*=\s*.?ConsoleLogin\b)(?=.*\$\.errorMessage\s*=\s*.?Failed\ authentication)"#,
        ),
        (
            "cloudwatch_log_metric_filter_aws_organizations_changes",
            r#"(?=.*\$\.eventSource\s*=\s*.?organizations\.amazonaws\.com)(?=.*\$\.eventName\s*=\s*.?AcceptHandshake\b)(?=.*\$\.eventName\s*=\s*.?AttachPolicy\b)(?=.*\$\.eventName\s*=\s*.?CancelHandshake\b)(?=.*\$\.eventName\s*=\s*.?CreateAccount\b)(?=.*\$\.eventName\s*=\s*.?CreateOrganization\b)(?=.*\$\.eventName\s*=\s*.?CreateOrganizationalUnit\b)(?=.*\$\.eventName\s*=\s*.?CreatePolicy\b)(?=.*\$\.eventName\s*=\s*.?DeclineHandshake\b)(?=.*\$\.eventName\s*=\s*.?DeleteOrganization\b)(?=.*\$\.eventName\s*=\s*.?DeleteOrganizationalUnit\b)(?=.*\$\.eventName\s*=\s*.?DeletePolicy\b)(?=.*\$\.eventName\s*=\s*.?EnableAllFeatures\b)(?=.*\$\.eventName\s*=\s*.?EnablePolicyType\b)(?=.*\$\.eventName\s*=\s*.?InviteAccountToOrganization\b)(?=.*\$\.eventName\s*=\s*.?LeaveOrganization\b)(?=.*\$\.eventName\s*=\s*.?DetachPolicy\b)(?=.*\$\.eventName\s*=\s*.?DisablePolicyType\b)(?=.*\$\.eventName\s*=\s*.?MoveAccount\b)(?=.*\$\.eventName\s*=\s*.?RemoveAccountFromOrganization\b)(?=.*\$\.eventName\s*=\s*.?UpdateOrganizationalUnit\b)(?=.*\$\.eventName\s*=\s*.?UpdatePolicy\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_disable_or_scheduled_deletion_of_kms_cmk",
            r#"(?=.*\$\.eventSource\s*=\s*.?kms\.amazonaws\.com)(?=.*\$\.eventName\s*=\s*.?DisableKey\b)(?=.*\$\.eventName\s*=\s*.?ScheduleKeyDeletion\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_for_s3_bucket_policy_changes",
            r#"(?=.*\$\.eventSource\s*=\s*.?s3\.amazonaws\.com)(?=.*\$\.eventName\s*=\s*.?PutBucketAcl\b)(?=.*\$\.eventName\s*=\s*.?PutBucketPolicy\b)(?=.*\$\.eventName\s*=\s*.?PutBucketCors\b)(?=.*\$\.eventName\s*=\s*.?PutBucketLifecycle\b)(?=.*\$\.eventName\s*=\s*.?PutBucketReplication\b)(?=.*\$\.eventName\s*=\s*.?DeleteBucketPolicy\b)(?=.*\$\.eventName\s*=\s*.?DeleteBucketCors\b)(?=.*\$\.eventName\s*=\s*.?DeleteBucketLifecycle\b)(?=.*\$\.eventName\s*=\s*.?DeleteBucketReplication\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_policy_changes",
            r#"(?=.*\$\.eventName\s*=\s*.?DeleteGroupPolicy\b)(?=.*\$\.eventName\s*=\s*.?DeleteRolePolicy\b)(?=.*\$\.eventName\s*=\s*.?DeleteUserPolicy\b)(?=.*\$\.eventName\s*=\s*.?PutGroupPolicy\b)(?=.*\$\.eventName\s*=\s*.?PutRolePolicy\b)(?=.*\$\.eventName\s*=\s*.?PutUserPolicy\b)(?=.*\$\.eventName\s*=\s*.?CreatePolicy\b)(?=.*\$\.eventName\s*=\s*.?DeletePolicy\b)(?=.*\$\.eventName\s*=\s*.?CreatePolicyVersion\b)(?=.*\$\.eventName\s*=\s*.?DeletePolicyVersion\b)(?=.*\$\.eventName\s*=\s*.?AttachRolePolicy\b)(?=.*\$\.eventName\s*=\s*.?DetachRolePolicy\b)(?=.*\$\.eventName\s*=\s*.?AttachUserPolicy\b)(?=.*\$\.eventName\s*=\s*.?DetachUserPolicy\b)(?=.*\$\.eventName\s*=\s*.?AttachGroupPolicy\b)(?=.*\$\.eventName\s*=\s*.?DetachGroupPolicy\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_root_usage",
            r#"\$\.userIdentity\.type\s*=\s*.?Root.+\$\.userIdentity\.invokedBy NOT EXISTS.+\$\.eventType\s*!=\s*.?AwsServiceEvent.?"#,
        ),
        (
            "cloudwatch_log_metric_filter_security_group_changes",
            r#"(?=.*\$\.eventName\s*=\s*.?AuthorizeSecurityGroupIngress\b)(?=.*\$\.eventName\s*=\s*.?AuthorizeSecurityGroupEgress\b)(?=.*\$\.eventName\s*=\s*.?RevokeSecurityGroupIngress\b)(?=.*\$\.eventName\s*=\s*.?RevokeSecurityGroupEgress\b)(?=.*\$\.eventName\s*=\s*.?CreateSecurityGroup\b)(?=.*\$\.eventName\s*=\s*.?DeleteSecurityGroup\b)"#,
        ),
        (
            "cloudwatch_log_metric_filter_sign_in_without_mfa",
            r#"(?=.*\$\.eventName\s*=\s*.?ConsoleLogin\b)(?=.*\$\.additionalEventData\.MFAUsed\s*!=\s*.?Yes)"#,
        ),
        (
            "cloudwatch_log_metric_filter_unauthorized_api_calls",
            r#"\$\.errorCode\s*=\s*.?\*UnauthorizedOperation.+\$\.errorCode\s*=\s*.?AccessDenied\*.?"#,
        ),
    ];

    /// AWS Security Hub's CIS controls and the pattern each requires exactly ("additional fields or
    /// terms cannot be added"), from the Security Hub user guide's CloudWatch controls page.
    const SECURITY_HUB: &[(&str, &str)] = &[
        (
            "CloudWatch.1",
            r#"{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent"}"#,
        ),
        ("CloudWatch.2", r#"{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}"#),
        (
            "CloudWatch.3",
            r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
        ),
        (
            "CloudWatch.4",
            r#"{($.eventName=DeleteGroupPolicy) || ($.eventName=DeleteRolePolicy) || ($.eventName=DeleteUserPolicy) || ($.eventName=PutGroupPolicy) || ($.eventName=PutRolePolicy) || ($.eventName=PutUserPolicy) || ($.eventName=CreatePolicy) || ($.eventName=DeletePolicy) || ($.eventName=CreatePolicyVersion) || ($.eventName=DeletePolicyVersion) || ($.eventName=AttachRolePolicy) || ($.eventName=DetachRolePolicy) || ($.eventName=AttachUserPolicy) || ($.eventName=DetachUserPolicy) || ($.eventName=AttachGroupPolicy) || ($.eventName=DetachGroupPolicy)}"#,
        ),
        (
            "CloudWatch.5",
            r#"{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) || ($.eventName=StartLogging) || ($.eventName=StopLogging)}"#,
        ),
        ("CloudWatch.6", r#"{($.eventName=ConsoleLogin) && ($.errorMessage="Failed authentication")}"#),
        (
            "CloudWatch.7",
            r#"{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || ($.eventName=ScheduleKeyDeletion))}"#,
        ),
        (
            "CloudWatch.8",
            r#"{($.eventSource=s3.amazonaws.com) && (($.eventName=PutBucketAcl) || ($.eventName=PutBucketPolicy) || ($.eventName=PutBucketCors) || ($.eventName=PutBucketLifecycle) || ($.eventName=PutBucketReplication) || ($.eventName=DeleteBucketPolicy) || ($.eventName=DeleteBucketCors) || ($.eventName=DeleteBucketLifecycle) || ($.eventName=DeleteBucketReplication))}"#,
        ),
        (
            "CloudWatch.9",
            r#"{($.eventSource=config.amazonaws.com) && (($.eventName=StopConfigurationRecorder) || ($.eventName=DeleteDeliveryChannel) || ($.eventName=PutDeliveryChannel) || ($.eventName=PutConfigurationRecorder))}"#,
        ),
        (
            "CloudWatch.10",
            r#"{($.eventName=AuthorizeSecurityGroupIngress) || ($.eventName=AuthorizeSecurityGroupEgress) || ($.eventName=RevokeSecurityGroupIngress) || ($.eventName=RevokeSecurityGroupEgress) || ($.eventName=CreateSecurityGroup) || ($.eventName=DeleteSecurityGroup)}"#,
        ),
        (
            "CloudWatch.11",
            r#"{($.eventName=CreateNetworkAcl) || ($.eventName=CreateNetworkAclEntry) || ($.eventName=DeleteNetworkAcl) || ($.eventName=DeleteNetworkAclEntry) || ($.eventName=ReplaceNetworkAclEntry) || ($.eventName=ReplaceNetworkAclAssociation)}"#,
        ),
        (
            "CloudWatch.12",
            r#"{($.eventName=CreateCustomerGateway) || ($.eventName=DeleteCustomerGateway) || ($.eventName=AttachInternetGateway) || ($.eventName=CreateInternetGateway) || ($.eventName=DeleteInternetGateway) || ($.eventName=DetachInternetGateway)}"#,
        ),
        (
            "CloudWatch.13",
            r#"{($.eventName=CreateRoute) || ($.eventName=CreateRouteTable) || ($.eventName=ReplaceRoute) || ($.eventName=ReplaceRouteTableAssociation) || ($.eventName=DeleteRouteTable) || ($.eventName=DeleteRoute) || ($.eventName=DisassociateRouteTable)}"#,
        ),
        (
            "CloudWatch.14",
            r#"{($.eventName=CreateVpc) || ($.eventName=DeleteVpc) || ($.eventName=ModifyVpcAttribute) || ($.eventName=AcceptVpcPeeringConnection) || ($.eventName=CreateVpcPeeringConnection) || ($.eventName=DeleteVpcPeeringConnection) || ($.eventName=RejectVpcPeeringConnection) || ($.eventName=AttachClassicLinkVpc) || ($.eventName=DetachClassicLinkVpc) || ($.eventName=DisableVpcClassicLink) || ($.eventName=EnableVpcClassicLink)}"#,
        ),
    ];

    /// Whether `pattern` satisfies Prowler's `regex` as Prowler applies it (Python's `re.search`
    /// with DOTALL). The `regex` crate has no lookaround: a chain of lookaheads `(?=.*A)(?=.*B)…`
    /// anchored nowhere matches exactly when each clause matches somewhere, so each is tried alone.
    fn prowler_matches(regex: &str, pattern: &str) -> bool {
        if !regex.starts_with("(?=") {
            return regex::Regex::new(&format!("(?s){regex}")).expect("regex").is_match(pattern);
        }
        regex.split("(?=").filter(|p| !p.is_empty()).all(|clause| {
            let inner = clause.strip_suffix(')').expect("a lookahead ends with )");
            let inner = inner.strip_prefix(".*").unwrap_or(inner);
            regex::Regex::new(&format!("(?s){inner}")).expect("regex").is_match(pattern)
        })
    }

    /// Security Hub compares the pattern exactly; only the spacing may differ.
    fn security_hub_matches(required: &str, pattern: &str) -> bool {
        let bare = |p: &str| p.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        bare(required) == bare(pattern)
    }

    /// The checks of `scanner` that no filter of `filters` passes.
    fn failing<'a>(checks: &'a [(&'a str, &'a str)], filters: &[&str], passes: fn(&str, &str) -> bool) -> Vec<&'a str> {
        checks.iter().filter(|(_, rule)| !filters.iter().any(|p| passes(rule, p))).map(|(name, _)| *name).collect()
    }

    #[test]
    fn every_scanner_check_of_the_monitoring_section_passes() {
        let ours: Vec<&str> = all_filters().map(|(_, _, p)| p).collect();
        assert_eq!(failing(PROWLER, &ours, prowler_matches), Vec::<&str>::new(), "Prowler");
        assert_eq!(failing(SECURITY_HUB, &ours, security_hub_matches), Vec::<&str>::new(), "Security Hub");
        // The benchmark's text alone fails both, which is why the scanner filters exist.
        let benchmark: Vec<&str> = FILTERS.iter().map(|(_, _, p)| *p).collect();
        assert_eq!(
            failing(PROWLER, &benchmark, prowler_matches),
            ["cloudwatch_log_metric_filter_aws_organizations_changes"]
        );
        assert_eq!(
            failing(SECURITY_HUB, &benchmark, security_hub_matches),
            ["CloudWatch.2", "CloudWatch.10", "CloudWatch.13"]
        );
    }

    #[test]
    fn the_scanner_rules_notice_a_missing_term() {
        let (_, route_tables) = PROWLER.iter().find(|(c, _)| c.contains("route_tables")).unwrap();
        let (_, _, ours) = FILTERS.iter().find(|(c, _, _)| c.id == catalogue::ROUTE_TABLE_CHANGES.id).unwrap();
        assert!(prowler_matches(route_tables, ours));
        assert!(!prowler_matches(route_tables, &ours.replace("($.eventSource = ec2.amazonaws.com) && ", "")));
        assert!(!prowler_matches(route_tables, &ours.replace("DisassociateRouteTable", "DisassociateRouteTables")));
        let (_, root) = PROWLER.iter().find(|(c, _)| c.ends_with("root_usage")).unwrap();
        assert!(!prowler_matches(root, r#"{ $.userIdentity.type = "Root" }"#));
        assert!(!security_hub_matches(SECURITY_HUB[0].1, &format!("{} ", SECURITY_HUB[1].1)));
    }

    /// The filter patterns of the CIS AWS Foundations Benchmark v7.0.0, section 5, as each
    /// recommendation's audit procedure prints them ("Ensure the output from the above command
    /// contains the following: filterPattern: …"; 5.2 in its variant for organizations using SSO,
    /// which the benchmark offers to reduce false positives). Typed from the benchmark's text as
    /// Prowler's mapping carries it (`prowler/compliance/aws/cis_7.0_aws.json`), which drops the
    /// double quotes.
    const BENCHMARK: &[(&str, &str)] = &[
        ("5.1", "{ ($.errorCode =*UnauthorizedOperation) || ($.errorCode =AccessDenied*) && ($.sourceIPAddress!=delivery.logs.amazonaws.com) && ($.eventName!=HeadBucket) }"),
        ("5.2", "{ ($.eventName = ConsoleLogin) && ($.additionalEventData.MFAUsed != Yes) && ($.userIdentity.type = IAMUser) && ($.responseElements.ConsoleLogin = Success) }"),
        ("5.3", "{ $.userIdentity.type = Root && $.userIdentity.invokedBy NOT EXISTS && $.eventType != AwsServiceEvent }"),
        ("5.4", "{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||($.eventName=DeleteUserPolicy)||($.eventName=PutGroupPolicy)||($.eventName=PutRolePolicy)||($.eventName=PutUserPolicy)||($.eventName=CreatePolicy)||($.eventName=DeletePolicy)||($.eventName=CreatePolicyVersion)||($.eventName=DeletePolicyVersion)||($.eventName=AttachRolePolicy)||($.eventName=DetachRolePolicy)||($.eventName=AttachUserPolicy)||($.eventName=DetachUserPolicy)||($.eventName=AttachGroupPolicy)||($.eventName=DetachGroupPolicy)}"),
        ("5.5", "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging) }"),
        ("5.6", "{ ($.eventName = ConsoleLogin) && ($.errorMessage = Failed authentication) }"),
        ("5.7", "{($.eventSource = kms.amazonaws.com) && (($.eventName=DisableKey)||($.eventName=ScheduleKeyDeletion)) }"),
        ("5.8", "{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || ($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || ($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || ($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || ($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }"),
        ("5.9", "{ ($.eventSource = config.amazonaws.com) && (($.eventName=StopConfigurationRecorder)||($.eventName=DeleteDeliveryChannel)||($.eventName=PutDeliveryChannel)||($.eventName=PutConfigurationRecorder)) }"),
        ("5.10", "{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) || ($.eventName = ModifySecurityGroupRules) }"),
        ("5.11", "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || ($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || ($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }"),
        ("5.12", "{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || ($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || ($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }"),
        ("5.13", "{($.eventSource = ec2.amazonaws.com) && ($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable) }"),
        ("5.14", "{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || ($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || ($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || ($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || ($.eventName = EnableVpcClassicLink) }"),
        ("5.15", "{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = AcceptHandshake) || ($.eventName = AttachPolicy) || ($.eventName = CreateAccount) || ($.eventName = CreateOrganizationalUnit) || ($.eventName = CreatePolicy) || ($.eventName = DeclineHandshake) || ($.eventName = DeleteOrganization) || ($.eventName = DeleteOrganizationalUnit) || ($.eventName = DeletePolicy) || ($.eventName = DetachPolicy) || ($.eventName = DisablePolicyType) || ($.eventName = EnablePolicyType) || ($.eventName = InviteAccountToOrganization) || ($.eventName = LeaveOrganization) || ($.eventName = MoveAccount) || ($.eventName = RemoveAccountFromOrganization) || ($.eventName = UpdatePolicy) || ($.eventName = UpdateOrganizationalUnit)) }"),
    ];

    /// The pattern's words and operators in order: what the benchmark's typography varies (spaces
    /// around operators, double quotes around values) is left out.
    fn words(pattern: &str) -> String {
        pattern.chars().filter(|c| !c.is_whitespace() && *c != '"').collect()
    }

    #[test]
    fn every_metric_filter_pattern_is_the_benchmarks_word_for_word() {
        assert_eq!(FILTERS.len(), BENCHMARK.len());
        for (control, _, pattern) in FILTERS {
            let cis = control.cis.and_then(|c| c.v7);
            let id = cis.unwrap_or_else(|| panic!("{} has no CIS v7.0.0 id", control.id));
            let (_, text) =
                BENCHMARK.iter().find(|(b, _)| *b == id).unwrap_or_else(|| panic!("no benchmark text for {id}"));
            assert_eq!(words(pattern), words(text), "{} (CIS v7.0.0 {id}) differs from the benchmark", control.id);
        }
    }

    #[test]
    fn the_comparison_notices_a_missing_or_changed_word() {
        let (_, text) = BENCHMARK[9];
        let dropped = text.replace(" || ($.eventName = ModifySecurityGroupRules)", "");
        assert_ne!(words(&dropped), words(text));
        assert_ne!(words(&text.replace("DeleteSecurityGroup", "DeleteSecurityGroups")), words(text));
        assert_eq!(
            words(r#"{ ($.errorMessage = "Failed authentication") }"#),
            words("{($.errorMessage=Failed authentication)}")
        );
    }
}

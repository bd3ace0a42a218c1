"""CloudFormation's SNS resources (providers.Subscription, providers.TopicPolicy) and NoEcho
parameters, through the local cloud's front door as the stacks tests make them.

    VENV/bin/python -m pytest tests/test_stacks_sns.py
"""

import json

from tests.test_stacks import client, ended, setUpModule, tearDownModule, template

__all__ = ["setUpModule", "tearDownModule"]


def test_a_subscription_and_a_topic_policy_are_made_replaced_and_removed_with_the_stack():
    cf, sns = client("cloudformation"), client("sns")
    resources = {
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "stk-drift"}},
        "Policy": {"Type": "AWS::SNS::TopicPolicy", "Properties": {"Topics": [{"Ref": "Topic"}], "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                                                    "Action": "sns:Publish", "Resource": {"Ref": "Topic"}}]}}},
        "Sub": {"Type": "AWS::SNS::Subscription", "Condition": "Notify", "Properties": {
            "TopicArn": {"Ref": "Topic"}, "Protocol": "email", "Endpoint": {"Ref": "Endpoint"}}},
    }
    params = {"Endpoint": {"Type": "String", "Default": "", "NoEcho": True}}
    conditions = {"Notify": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Endpoint"}, ""]}]}}
    body = template(resources, Parameters=params, Conditions=conditions)
    cf.create_stack(StackName="stk-sns", TemplateBody=body,
                    Parameters=[{"ParameterKey": "Endpoint", "ParameterValue": "secops@example.com"}])
    stack = ended(cf, "stk-sns")
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    assert stack["Parameters"] == [{"ParameterKey": "Endpoint", "ParameterValue": "****"}], "NoEcho is never shown"
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":stk-drift"))
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "secops@example.com")]
    policy = json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}

    # Another endpoint is another subscription; none when the endpoint is empty.
    cf.update_stack(StackName="stk-sns", TemplateBody=body,
                    Parameters=[{"ParameterKey": "Endpoint", "ParameterValue": "oncall@example.com"}])
    assert ended(cf, "stk-sns")["StackStatus"] == "UPDATE_COMPLETE"
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["Endpoint"] for s in subs] == ["oncall@example.com"]
    cf.update_stack(StackName="stk-sns", TemplateBody=body, Parameters=[{"ParameterKey": "Endpoint", "ParameterValue": ""}])
    assert ended(cf, "stk-sns")["StackStatus"] == "UPDATE_COMPLETE"
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []

    # Without the policy resource the topic has SNS's default policy: its owner's account only.
    without = template({k: v for k, v in resources.items() if k != "Policy"}, Parameters=params, Conditions=conditions)
    cf.update_stack(StackName="stk-sns", TemplateBody=without, Parameters=[{"ParameterKey": "Endpoint", "ParameterValue": ""}])
    assert ended(cf, "stk-sns")["StackStatus"] == "UPDATE_COMPLETE"
    policy = json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    assert [s["Condition"] for s in policy["Statement"]] == [{"StringEquals": {"AWS:SourceOwner": topic.split(":")[4]}}]
    cf.delete_stack(StackName="stk-sns")
    assert ended(cf, stack["StackId"])["StackStatus"] == "DELETE_COMPLETE"

"""Optional VPC flow logs to an encrypted log group, delivered by a narrowly trusted role."""

from __future__ import annotations

import json

from tests.infra.harness import BASE_CONFIG


def test_flow_logs_are_off_by_default(http_stack) -> None:
    assert http_stack.of_type("aws:ec2/flowLog:FlowLog") == []


def test_flow_logs_capture_the_vpc_into_an_encrypted_group_with_retention(run) -> None:
    stack = run({**BASE_CONFIG, "vpcFlowLogs": "true", "logRetentionDays": 14})
    flow = stack.one("aws:ec2/flowLog:FlowLog").inputs
    vpc = stack.one("aws:ec2/vpc:Vpc")
    assert flow["vpcId"] == vpc.id and flow["trafficType"] == "ALL"
    assert flow["logDestinationType"] == "cloud-watch-logs"
    group = next(g for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup") if "flow-logs" in g.inputs["name"])
    assert group.inputs["retentionInDays"] == 14
    assert group.inputs["kmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/keys-data-key-id"
    assert flow["logDestination"].endswith(group.name)
    role = stack.named("flow-logs-role", "aws:iam/role:Role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    policy = json.loads(stack.named("flow-logs-role", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    (statement,) = policy["Statement"]
    assert all(r.startswith("arn:aws:cloudwatch:") or r.startswith("arn:aws:logs:") for r in statement["Resource"])
    assert "*" not in statement["Resource"]

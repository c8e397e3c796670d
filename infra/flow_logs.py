"""Optional VPC flow logs (``vpcFlowLogs: true``): all traffic, 60 s aggregation, to a KMS-encrypted
CloudWatch log group kept ``logRetentionDays``, delivered by a role only this account's flow logs
may assume. Source: docs.aws.amazon.com/vpc/latest/userguide/flow-logs-cwl.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws


def flow_logs_trust_policy(partition: str, account_id: str, region: str) -> dict[str, Any]:
    """VPC Flow Logs may assume the delivery role only for this account's flow logs (confused deputy)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account_id}:vpc-flow-log/*"},
                },
            }
        ],
    }


def flow_logs_delivery_policy(log_group_arn: str) -> dict[str, Any]:
    """Write to the one flow-log group. Source: docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html"""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": [log_group_arn, f"{log_group_arn}:*"],
            }
        ],
    }


@dataclass(frozen=True)
class FlowLogsArgs:
    vpc_id: pulumi.Input[str]
    log_group_name: str
    retention_days: int
    kms_key_arn: pulumi.Input[str]
    region: str
    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]


class FlowLogs(pulumi.ComponentResource):
    """VPC flow logs (ALL traffic, 60 s aggregation) to CloudWatch Logs. Outputs: log_group_name."""

    def __init__(self, name: str, args: FlowLogsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:edge:FlowLogs", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=args.log_group_name,
            retention_in_days=args.retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.all(args.partition, args.account_id).apply(
                lambda v: json.dumps(flow_logs_trust_policy(v[0], v[1], args.region))
            ),
            description="VPC Flow Logs: deliver to the stack's flow-log group",
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-role",
            role=role.id,
            policy=group.arn.apply(lambda arn: json.dumps(flow_logs_delivery_policy(arn))),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-vpc",
            vpc_id=args.vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            opts=child,
        )
        self.log_group_name = group.name
        self.register_outputs({"log_group_name": self.log_group_name})

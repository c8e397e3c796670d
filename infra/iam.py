"""IAM: the task role (what the proxy may do at runtime) and the execution role (what ECS needs to
start it). Both are inline, least-privilege policies built in ``policies.py``; no managed policy
with ``*`` resources is attached.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.bedrock_access import bedrock_statements
from infra.policies import ecs_tasks_trust_policy, execution_role_policy, task_role_policy


def secret_arn_of(value_from: str) -> str:
    """The secret's ARN in an ECS ``valueFrom``, which may name a JSON key of the secret
    (``arn:aws:secretsmanager:<region>:<account>:secret:<name>:<json-key>:<stage>:<version>``)."""
    return ":".join(value_from.split(":")[:7])


@dataclass(frozen=True)
class ServiceRolesArgs:
    """``secret_value_froms``: every ECS ``valueFrom`` any container gets; the execution role may read
    exactly those secrets. ``bedrock_model_ids``: the Bedrock ids the app can route to
    (``infra.bedrock_access.routable_model_ids``). ``ecr_repository_arn``: repository the image comes
    from, or None for a public, non-ECR image."""

    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    region: str
    bedrock_region: str
    bedrock_model_ids: Sequence[str]
    app_key_arn: pulumi.Input[str]
    data_key_arn: pulumi.Input[str]
    secret_value_froms: Sequence[pulumi.Input[str]]
    log_group_name: str
    ecr_repository_arn: pulumi.Input[str] | None


class ServiceRoles(pulumi.ComponentResource):
    """Outputs: task_role_arn, execution_role_arn."""

    def __init__(self, name: str, args: ServiceRolesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:security:ServiceRoles", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        trust = pulumi.Output.all(args.partition, args.account_id).apply(
            lambda v: json.dumps(ecs_tasks_trust_policy(v[0], v[1], args.region))
        )

        task_role = aws.iam.Role(
            f"{name}-task",
            assume_role_policy=trust,
            description="claude-code-proxy tasks: Bedrock + app key",
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-task",
            role=task_role.id,
            policy=pulumi.Output.all(args.partition, args.account_id, args.app_key_arn).apply(
                lambda v: json.dumps(
                    task_role_policy(
                        bedrock_statements(v[0], v[1], args.bedrock_region, args.bedrock_model_ids),
                        app_key_arn=v[2],
                    )
                )
            ),
            opts=child,
        )

        execution_role = aws.iam.Role(
            f"{name}-execution",
            assume_role_policy=trust,
            description="ECS agent: pull image, read secrets, write logs",
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-execution",
            role=execution_role.id,
            policy=pulumi.Output.all(
                args.partition,
                args.account_id,
                args.data_key_arn,
                args.ecr_repository_arn,
                *args.secret_value_froms,
            ).apply(
                lambda v: json.dumps(
                    execution_role_policy(
                        secret_arns=sorted({secret_arn_of(x) for x in v[4:]}),
                        data_key_arn=v[2],
                        log_group_arn=f"arn:{v[0]}:logs:{args.region}:{v[1]}:log-group:{args.log_group_name}",
                        region=args.region,
                        ecr_repository_arn=v[3],
                    )
                )
            ),
            opts=child,
        )

        self.task_role_arn = task_role.arn
        self.execution_role_arn = execution_role.arn
        self.register_outputs({"task_role_arn": self.task_role_arn, "execution_role_arn": self.execution_role_arn})

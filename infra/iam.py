"""IAM: the task role (what the proxy may do at runtime) and the execution role (what ECS needs to
start it). Both are inline, least-privilege policies built in ``policies.py``; no managed policy
with ``*`` resources is attached.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.policies import bedrock_model_arns, ecs_tasks_trust_policy, execution_role_policy, task_role_policy


@dataclass(frozen=True)
class ServiceRolesArgs:
    """``secret_arns``: env name -> Secrets Manager ARN the execution role may read (exactly these).
    ``ecr_repository_arn``: repository the image comes from, or None for a public, non-ECR image."""

    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    region: str
    bedrock_region: str
    inference_profile_ids: Sequence[str]
    model_ids: Sequence[str]
    bedrock_regions: Sequence[str]
    global_profiles: bool
    app_key_arn: pulumi.Input[str]
    data_key_arn: pulumi.Input[str]
    secret_arns: Mapping[str, pulumi.Input[str]]
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
                        bedrock_model_arns(
                            partition=v[0],
                            account_id=v[1],
                            source_region=args.bedrock_region,
                            profile_ids=args.inference_profile_ids,
                            model_ids=args.model_ids,
                            regions=args.bedrock_regions,
                            global_profiles=args.global_profiles,
                        ),
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
        secret_names = sorted(args.secret_arns)
        aws.iam.RolePolicy(
            f"{name}-execution",
            role=execution_role.id,
            policy=pulumi.Output.all(
                args.partition,
                args.account_id,
                args.data_key_arn,
                args.ecr_repository_arn,
                *[args.secret_arns[n] for n in secret_names],
            ).apply(
                lambda v: json.dumps(
                    execution_role_policy(
                        secret_arns=v[4:],
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

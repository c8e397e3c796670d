"""Keys: two customer-managed KMS keys with yearly rotation.

- ``app``: the proxy's envelope-encryption key for stored Bedrock API keys (``PROXY_KMS_KEY_ID``);
  only the task role is granted it.
- ``data``: storage encryption (DocumentDB, Secrets Manager, log groups, SNS); the task role has no
  grant on it, the execution role may decrypt only via Secrets Manager.

Two keys instead of one keep the app's runtime grant (Encrypt/Decrypt) from reaching the stored data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.policies import app_key_policy, data_key_policy


@dataclass(frozen=True)
class KeysArgs:
    """``alias_prefix``: ``<project>-<stack>``, so aliases (unique per account and region) do not
    collide between stacks. ``protect``: Pulumi refuses to delete the keys (``protect`` option).
    ``deletion_window_days`` (7-30) is how long a deleted key stays recoverable."""

    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]
    region: str
    alias_prefix: str
    protect: bool = True
    deletion_window_days: int = 30


class Keys(pulumi.ComponentResource):
    """Outputs: app_key_arn, app_key_id, data_key_arn (ARNs are not secret)."""

    def __init__(self, name: str, args: KeysArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:security:Keys", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        app_key = aws.kms.Key(
            f"{name}-app",
            description="claude-code-proxy: envelope encryption of stored Bedrock API keys",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=pulumi.Output.all(args.partition, args.account_id).apply(
                lambda v: json.dumps(app_key_policy(v[0], v[1]))
            ),
            opts=kept,
        )
        aws.kms.Alias(f"{name}-app", name=f"alias/{args.alias_prefix}-app", target_key_id=app_key.key_id, opts=child)
        data_key = aws.kms.Key(
            f"{name}-data",
            description="claude-code-proxy: storage encryption (DocumentDB, secrets, logs, alarms)",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=pulumi.Output.all(args.partition, args.account_id).apply(
                lambda v: json.dumps(data_key_policy(v[0], v[1], args.region))
            ),
            opts=kept,
        )
        aws.kms.Alias(f"{name}-data", name=f"alias/{args.alias_prefix}-data", target_key_id=data_key.key_id, opts=child)

        self.app_key_arn = app_key.arn
        self.app_key_id = app_key.key_id
        self.data_key_arn = data_key.arn
        self.register_outputs(
            {"app_key_arn": self.app_key_arn, "app_key_id": self.app_key_id, "data_key_arn": self.data_key_arn}
        )

"""App secrets in Secrets Manager: ``PROXY_SECRET_KEY`` (generated), ``PROXY_ADMIN_PASSWORD``
(from ``pulumi config set --secret adminPassword`` or generated) and, if configured,
``PROXY_METRICS_TOKEN`` and ``PROXY_OIDC_CLIENT_SECRET`` (``oidcClientSecret``, single sign-on). All encrypted with the data key; ECS injects them by ``valueFrom``.

The module is not called ``secrets.py``: ``main: infra/`` puts this folder on ``sys.path`` when Pulumi
runs the program, where that name would shadow the standard library's ``secrets``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random


@dataclass(frozen=True)
class AppSecretsArgs:
    """``admin_password`` / ``metrics_token``: secret Outputs from config, or None (generate / omit).
    ``recovery_window_days``: 0 deletes at once on teardown, 7-30 keeps the secret recoverable.
    ``name_prefix``: ``<project>-<stack>``, the first part of every secret name. ``protect``: Pulumi
    refuses to delete the secrets."""

    name_prefix: str
    kms_key_arn: pulumi.Input[str]
    admin_password: pulumi.Output[str] | None
    metrics_token: pulumi.Output[str] | None
    recovery_window_days: int
    protect: bool = True
    oidc_client_secret: pulumi.Output[str] | None = None  # PROXY_OIDC_CLIENT_SECRET (single sign-on)


class AppSecrets(pulumi.ComponentResource):
    """Outputs: secret ARNs by env name (``env_secret_arns``) and ``admin_password_secret_arn``.
    Values never leave Secrets Manager and Pulumi's encrypted state."""

    def __init__(self, name: str, args: AppSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:security:AppSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # 64 alphanumerics ~ 380 bits: HMAC pepper for access keys and signing key for admin cookies.
        secret_key = random.RandomPassword(f"{name}-secret-key", length=64, special=False, opts=child)
        admin_password: pulumi.Output[str]
        if args.admin_password is None:
            admin_password = random.RandomPassword(
                f"{name}-admin-password", length=32, special=False, opts=child
            ).result
        else:
            admin_password = args.admin_password

        def stored(key: str, description: str, value: pulumi.Input[str]) -> aws.secretsmanager.Secret:
            secret = aws.secretsmanager.Secret(
                f"{name}-{key}",
                name_prefix=f"{args.name_prefix}/{key}-",
                description=description,
                kms_key_id=args.kms_key_arn,
                recovery_window_in_days=args.recovery_window_days,
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-{key}", secret_id=secret.id, secret_string=pulumi.Output.secret(value), opts=child
            )
            return secret

        env: dict[str, pulumi.Output[str]] = {
            "PROXY_SECRET_KEY": stored("secret-key", "claude-code-proxy PROXY_SECRET_KEY", secret_key.result).arn,
        }
        admin = stored("admin-password", "claude-code-proxy dashboard admin password", admin_password)
        env["PROXY_ADMIN_PASSWORD"] = admin.arn
        if args.metrics_token is not None:
            env["PROXY_METRICS_TOKEN"] = stored(
                "metrics-token", "claude-code-proxy /metrics bearer token", args.metrics_token
            ).arn

        if args.oidc_client_secret is not None:
            env["PROXY_OIDC_CLIENT_SECRET"] = stored(
                "oidc-client-secret", "claude-code-proxy single sign-on OIDC client secret", args.oidc_client_secret
            ).arn
        self.env_secret_arns = env
        self.admin_password_secret_arn = admin.arn
        self.register_outputs({"env_secret_arns": env, "admin_password_secret_arn": self.admin_password_secret_arn})

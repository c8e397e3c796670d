"""The app's single sign-on settings on the task (infra/stack.py, app_secrets.py, stack_config.py)."""

from __future__ import annotations

import pytest

from tests.infra.harness import ACCOUNT_ID, BASE_CONFIG, REGION, SSO_CLIENT_SECRET, ProgramRun, is_secret_input, unwrap

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
SSO = {**BASE_CONFIG, "oidcIssuer": "https://example.okta.com/oauth2/default", "oidcClientId": "0oa1proxy",
       "oidcClientSecret": SSO_CLIENT_SECRET, "oidcAdminGroups": "proxy-admins,platform"}


def test_oidc_settings_reach_the_task_and_the_secret_comes_by_value_from(run) -> None:
    stack: ProgramRun = run(SSO)
    container = stack.task_container()
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["PROXY_OIDC_ISSUER"] == "https://example.okta.com/oauth2/default"
    assert env["PROXY_OIDC_CLIENT_ID"] == "0oa1proxy" and env["PROXY_OIDC_ADMIN_GROUPS"] == "proxy-admins,platform"
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    secret = stack.named("app-secrets-oidc-client-secret", SECRET)
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:app-secrets-oidc-client-secret-AbCdEf"
    assert secrets["PROXY_OIDC_CLIENT_SECRET"] == arn and "PROXY_OIDC_CLIENT_SECRET" not in env
    version = stack.named("app-secrets-oidc-client-secret", VERSION)
    assert is_secret_input(version.inputs["secretString"]) and unwrap(version.inputs["secretString"]) == SSO_CLIENT_SECRET
    assert secret.inputs["kmsKeyId"].endswith("keys-data-key-id")
    assert SSO_CLIENT_SECRET not in str(stack.task_container())
    # the execution role may read it (ECS resolves valueFrom with that role)
    assert any(arn in str(r.inputs) for r in stack.resources if r.typ.startswith("aws:iam/"))


def test_without_oidc_config_nothing_is_added(http_stack: ProgramRun) -> None:
    container = http_stack.task_container()
    names = {e["name"] for e in container["environment"]} | {s["name"] for s in container["secrets"]}
    assert not {n for n in names if n.startswith("PROXY_OIDC_")}


@pytest.mark.parametrize("config", [
    {**BASE_CONFIG, "oidcIssuer": "https://idp.example.com"},
    {**BASE_CONFIG, "oidcIssuer": "http://idp.example.com", "oidcClientId": "x"},
])
def test_incomplete_or_plain_http_oidc_config_is_refused(run, config) -> None:
    with pytest.raises(Exception, match="oidcIssuer"):
        run(config)

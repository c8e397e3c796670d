"""App secrets over a mocked run."""

from __future__ import annotations

from tests.infra.harness import BASE_CONFIG, CONFIG_ADMIN_PASSWORD, ProgramRun, is_secret_input, unwrap

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"


def test_every_secret_is_encrypted_with_the_data_key(http_stack: ProgramRun) -> None:
    data_key = "arn:aws:kms:us-east-1:123456789012:key/keys-data-key-id"
    secrets = http_stack.of_type(SECRET)
    assert len(secrets) == 4  # secret key, admin password, DocumentDB master, MongoDB URL
    assert {s.inputs["kmsKeyId"] for s in secrets} == {data_key}


def test_every_secret_value_is_marked_secret(http_stack: ProgramRun, https_stack: ProgramRun) -> None:
    for stack in (http_stack, https_stack):
        assert all(is_secret_input(v.inputs["secretString"]) for v in stack.of_type(VERSION))


def test_admin_password_generated_unless_configured(http_stack: ProgramRun, https_stack: ProgramRun) -> None:
    generated = unwrap(http_stack.named("app-secrets-admin-password", VERSION).inputs["secretString"])
    assert generated in http_stack.generated_secrets
    configured = unwrap(https_stack.named("app-secrets-admin-password", VERSION).inputs["secretString"])
    assert configured == CONFIG_ADMIN_PASSWORD


def test_secret_key_is_long_and_generated(http_stack: ProgramRun) -> None:
    password = http_stack.named("app-secrets-secret-key", "random:index/randomPassword:RandomPassword")
    assert password.inputs["length"] >= 64


def test_recovery_window_follows_deletion_protection(http_stack: ProgramRun, run) -> None:
    assert {s.inputs["recoveryWindowInDays"] for s in http_stack.of_type(SECRET)} == {7}
    loose = run({**BASE_CONFIG, "deletionProtection": False})
    assert {s.inputs["recoveryWindowInDays"] for s in loose.of_type(SECRET)} == {0}

"""The ECS container definition (pure)."""

from __future__ import annotations

import pytest

from infra.container import APP_UID, CONTAINER_PORT, ContainerSpec, container_definition, serve_command

SPEC = ContainerSpec(
    image="repo/proxy@sha256:" + "0" * 64,
    environment={"PROXY_LOG_LEVEL": "INFO"},
    secrets={"PROXY_SECRET_KEY": "arn:aws:secretsmanager:us-east-1:1:secret:k"},
    log_group_name="/ecs/x",
    region="us-east-1",
    forwarded_allow_ips="10.0.0.0/20,10.0.16.0/20",
    stop_timeout_s=120,
    graceful_shutdown_s=110,
)


def test_secrets_go_by_value_from_and_env_stays_plain() -> None:
    container = container_definition(SPEC)
    assert container["secrets"] == [
        {"name": "PROXY_SECRET_KEY", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:k"}
    ]
    assert container["environment"] == [{"name": "PROXY_LOG_LEVEL", "value": "INFO"}]


def test_a_name_cannot_be_both_env_and_secret() -> None:
    spec = ContainerSpec(**{**SPEC.__dict__, "environment": {"PROXY_SECRET_KEY": "oops"}})
    with pytest.raises(ValueError, match="PROXY_SECRET_KEY"):
        container_definition(spec)


def test_hardening() -> None:
    container = container_definition(SPEC)
    assert container["user"] == f"{APP_UID}:{APP_UID}" and APP_UID != 0
    assert container["readonlyRootFilesystem"] is True
    assert container["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
    assert container["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    assert container["stopTimeout"] == 120
    assert container["logConfiguration"]["options"]["mode"] == "non-blocking"


def test_serve_command_trusts_only_the_given_proxies_and_drains() -> None:
    argv = serve_command("10.0.0.0/20", 110)
    assert argv[:2] == ["claude-code-proxy", "serve"]
    assert argv[argv.index("--port") + 1] == str(CONTAINER_PORT)
    assert "--proxy-headers" in argv
    assert argv[argv.index("--forwarded-allow-ips") + 1] == "10.0.0.0/20"
    assert argv[argv.index("--timeout-graceful-shutdown") + 1] == "110"


def test_health_check_probes_health_endpoint_without_curl() -> None:
    command = container_definition(SPEC)["healthCheck"]["command"]
    assert command[:2] == ["CMD", "python"]
    assert f"http://127.0.0.1:{CONTAINER_PORT}/health" in command[-1]


def test_serve_command_uses_only_flags_the_cli_defines() -> None:
    cli = pytest.importorskip("app.cli")
    known = {opt for param in cli.serve.params for opt in (*param.opts, *param.secondary_opts)}
    flags = [word for word in serve_command("10.0.0.0/20", 110) if word.startswith("--")]
    assert flags and set(flags) <= known, set(flags) - known

"""The proxy's ECS container definition as a plain dict (pure; no Pulumi).

Field names are the ECS API's own (camelCase), so the dict is ``json.dumps``-ed straight into
``aws.ecs.TaskDefinition(container_definitions=...)``.
Source: docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CONTAINER_NAME = "proxy"
#: The one-shot init container that creates the app's database user before the proxy starts.
DB_INIT_CONTAINER_NAME = "db-init"
CONTAINER_PORT = 8080
#: The image's non-root user (see Dockerfile: ``useradd --uid 10001 app``).
APP_UID = 10001
SCRATCH_VOLUME = "tmp"

#: Liveness probe without curl (not in python:slim): exit 0 iff GET /health answers 200.
HEALTH_CHECK_COMMAND = (
    "python",
    "-c",
    "import sys,urllib.request as u;"
    f"sys.exit(0 if u.urlopen('http://127.0.0.1:{CONTAINER_PORT}/health',timeout=4).status==200 else 1)",
)


@dataclass(frozen=True)
class ContainerSpec:
    """Resolved inputs of the container definition.

    ``environment`` maps plain env names to values (never secrets); ``secrets`` maps env names to
    Secrets Manager ARNs that ECS resolves at start (``valueFrom``). ``forwarded_allow_ips`` is the
    comma-separated CIDRs of the load balancer's subnets, the only peers whose X-Forwarded-* headers
    uvicorn trusts. Times are in seconds.
    """

    image: str
    environment: Mapping[str, str]
    secrets: Mapping[str, str]
    log_group_name: str
    region: str
    forwarded_allow_ips: str
    stop_timeout_s: int
    graceful_shutdown_s: int
    depends_on_success: tuple[str, ...] = ()  # containers that must exit 0 before this one starts


@dataclass(frozen=True)
class DbInitSpec:
    """The ``db-init`` container: plain ``environment`` and ``secrets`` (env name -> ``valueFrom``),
    which alone carry the master credentials; image, logs and region as the proxy's."""

    image: str
    environment: Mapping[str, str]
    secrets: Mapping[str, str]
    log_group_name: str
    region: str


def serve_command(forwarded_allow_ips: str, graceful_shutdown_s: int) -> list[str]:
    """The ``claude-code-proxy serve`` argv the task runs (overrides the image CMD with stack values)."""
    return [
        "claude-code-proxy",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(CONTAINER_PORT),
        "--proxy-headers",
        "--forwarded-allow-ips",
        forwarded_allow_ips,
        "--timeout-graceful-shutdown",
        str(graceful_shutdown_s),
    ]


def container_definition(spec: ContainerSpec) -> dict[str, Any]:
    """One essential container: non-root, read-only root filesystem with a writable /tmp volume, all
    Linux capabilities dropped, secrets by ``valueFrom``, awslogs (non-blocking), a /health check and
    ``stopTimeout`` for draining open streams. Raises ValueError if a name is both env and secret."""
    clash = set(spec.environment) & set(spec.secrets)
    if clash:
        raise ValueError(f"{sorted(clash)} given both as plain environment and as secrets")
    return {
        "name": CONTAINER_NAME,
        "image": spec.image,
        "essential": True,
        "command": serve_command(spec.forwarded_allow_ips, spec.graceful_shutdown_s),
        "user": f"{APP_UID}:{APP_UID}",
        "readonlyRootFilesystem": True,
        "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp", "name": "http"}],
        "environment": [{"name": k, "value": v} for k, v in sorted(spec.environment.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(spec.secrets.items())],
        "mountPoints": [{"sourceVolume": SCRATCH_VOLUME, "containerPath": "/tmp", "readOnly": False}],
        "linuxParameters": {"initProcessEnabled": True, "capabilities": {"drop": ["ALL"]}},
        "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
        "healthCheck": {
            "command": ["CMD", *HEALTH_CHECK_COMMAND],
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 30,
        },
        "stopTimeout": spec.stop_timeout_s,
        "logConfiguration": _awslogs(spec.log_group_name, spec.region, CONTAINER_NAME),
        **(
            {"dependsOn": [{"containerName": n, "condition": "SUCCESS"} for n in spec.depends_on_success]}
            if spec.depends_on_success
            else {}
        ),
    }


def _awslogs(log_group_name: str, region: str, stream_prefix: str) -> dict[str, Any]:
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": log_group_name,
            "awslogs-region": region,
            "awslogs-stream-prefix": stream_prefix,
            # a slow CloudWatch must never block the request path; 25 MiB buffer before drops
            "mode": "non-blocking",
            "max-buffer-size": "25m",
        },
    }


def db_init_container_definition(spec: DbInitSpec) -> dict[str, Any]:
    """The non-essential ``db-init`` container: runs ``claude-code-proxy db-init`` once and exits; the
    proxy container waits for its exit code 0 (``dependsOn`` SUCCESS). Same hardening as the proxy
    (non-root, read-only root, no capabilities). Raises ValueError if a name is both env and secret."""
    clash = set(spec.environment) & set(spec.secrets)
    if clash:
        raise ValueError(f"{sorted(clash)} given both as plain environment and as secrets")
    return {
        "name": DB_INIT_CONTAINER_NAME,
        "image": spec.image,
        "essential": False,
        "command": ["claude-code-proxy", "db-init"],
        "user": f"{APP_UID}:{APP_UID}",
        "readonlyRootFilesystem": True,
        "environment": [{"name": k, "value": v} for k, v in sorted(spec.environment.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(spec.secrets.items())],
        "linuxParameters": {"initProcessEnabled": True, "capabilities": {"drop": ["ALL"]}},
        "logConfiguration": _awslogs(spec.log_group_name, spec.region, DB_INIT_CONTAINER_NAME),
    }

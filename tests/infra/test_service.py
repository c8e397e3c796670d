"""ECS task definition, service and autoscaling over a mocked run."""

from __future__ import annotations

from tests.infra.harness import BASE_CONFIG, HTTPS_CONFIG, ProgramRun, strings_in

SECRET_ENV = {"PROXY_MONGODB_URL", "PROXY_SECRET_KEY", "PROXY_ADMIN_PASSWORD"}


def env(stack: ProgramRun) -> dict[str, str]:
    return {e["name"]: e["value"] for e in stack.task_container()["environment"]}


def test_secrets_injected_by_value_from_never_as_plain_env(http_stack: ProgramRun, https_stack: ProgramRun) -> None:
    for stack, expected in ((http_stack, SECRET_ENV), (https_stack, SECRET_ENV | {"PROXY_METRICS_TOKEN"})):
        container = stack.task_container()
        secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
        assert set(secrets) == expected
        secret_arns = {
            f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{r.name}-AbCdEf"
            for r in stack.of_type("aws:secretsmanager/secret:Secret")
        }
        assert set(secrets.values()) <= secret_arns
        assert not set(env(stack)) & expected
        plain = list(strings_in(container))
        for secret in stack.secret_values():
            assert not any(secret in value for value in plain), f"{secret} reached the task definition"


def test_plain_environment_carries_the_apps_settings(http_stack: ProgramRun, https_stack: ProgramRun) -> None:
    plain = env(http_stack)
    assert set(plain) == {
        "PROXY_MONGODB_DATABASE",
        "PROXY_ADMIN_USERNAME",
        "PROXY_KMS_KEY_ID",
        "PROXY_BEDROCK_REGION",
        "PROXY_BEDROCK_INFERENCE_PROFILE_PREFIX",
        "PROXY_PUBLIC_BASE_URL",
        "PROXY_LOG_LEVEL",
        "PROXY_COOKIE_SECURE",
    }
    assert plain["PROXY_KMS_KEY_ID"] == "arn:aws:kms:us-east-1:123456789012:key/keys-app-key-id"
    assert plain["PROXY_COOKIE_SECURE"] == "false"
    assert plain["PROXY_PUBLIC_BASE_URL"] == http_stack.outputs["proxyBaseUrl"]
    assert env(https_stack)["PROXY_COOKIE_SECURE"] == "true"
    assert env(https_stack)["PROXY_PUBLIC_BASE_URL"] == "https://proxy.example.com"


def test_container_runs_non_root_read_only_with_scratch_tmp(http_stack: ProgramRun) -> None:
    container = http_stack.task_container()
    user = container["user"].split(":")[0]
    assert user not in ("", "0", "root")
    assert container["readonlyRootFilesystem"] is True
    volumes = {v["name"] for v in http_stack.one("aws:ecs/taskDefinition:TaskDefinition").inputs["volumes"]}
    assert {m["sourceVolume"] for m in container["mountPoints"]} <= volumes
    assert [m["containerPath"] for m in container["mountPoints"]] == ["/tmp"]


def test_streams_get_the_longest_stop_timeout_fargate_allows(http_stack: ProgramRun) -> None:
    container = http_stack.task_container()
    assert container["stopTimeout"] == 120
    command = container["command"]
    graceful = int(command[command.index("--timeout-graceful-shutdown") + 1])
    assert 0 < graceful < container["stopTimeout"]


def test_trusted_proxies_are_the_load_balancer_subnets(http_stack: ProgramRun) -> None:
    command = http_stack.task_container()["command"]
    trusted = command[command.index("--forwarded-allow-ips") + 1].split(",")
    public = sorted(
        s.inputs["cidrBlock"]
        for s in http_stack.of_type("aws:ec2/subnet:Subnet")
        if s.inputs["tags"]["Tier"] == "public"
    )
    assert sorted(trusted) == public
    assert "--proxy-headers" in command


def test_health_check_and_logs(http_stack: ProgramRun, run) -> None:  # noqa: ANN001
    container = http_stack.task_container()
    assert "/health" in container["healthCheck"]["command"][-1]
    options = container["logConfiguration"]["options"]
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    group = next(
        g
        for g in http_stack.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.inputs["name"] == options["awslogs-group"]
    )
    assert group.inputs["retentionInDays"] == 30
    assert group.inputs["kmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/keys-data-key-id"
    tuned = run({**BASE_CONFIG, "logRetentionDays": 90})
    assert {g.inputs["retentionInDays"] for g in tuned.of_type("aws:cloudwatch/logGroup:LogGroup")} == {90}


def test_fargate_task_size_from_config(run) -> None:  # noqa: ANN001
    task = run({**BASE_CONFIG, "taskCpu": 1024, "taskMemory": 3072}).one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert (task["cpu"], task["memory"]) == ("1024", "3072")
    assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"


def test_service_rolls_back_failed_deployments_behind_the_alb(http_stack: ProgramRun) -> None:
    service = http_stack.one("aws:ecs/service:Service").inputs
    assert service["launchType"] == "FARGATE"
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    (lb,) = service["loadBalancers"]
    assert lb["targetGroupArn"] == "arn:aws:lb:us-east-1:123456789012:targetgroup/edge-tg"
    assert (lb["containerName"], lb["containerPort"]) == ("proxy", 8080)
    assert service["desiredCount"] == 2


def test_cluster_has_container_insights(http_stack: ProgramRun) -> None:
    settings = http_stack.one("aws:ecs/cluster:Cluster").inputs["settings"]
    assert {"name": "containerInsights", "value": "enabled"} in settings


def test_ecr_repository_is_scanned_and_immutable(http_stack: ProgramRun) -> None:
    repo = http_stack.one("aws:ecr/repository:Repository").inputs
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}


def test_image_built_from_the_dockerfile_when_no_uri_is_given(http_stack: ProgramRun) -> None:
    build = http_stack.one("docker-build:index:Image").inputs
    assert build["dockerfile"]["location"].endswith("/Dockerfile")
    assert build["push"] is True and build["platforms"] == ["linux/arm64"]  # Graviton by default
    (tag,) = build["tags"]
    assert tag.startswith("123456789012.dkr.ecr.us-east-1.amazonaws.com/image-repo:")
    assert http_stack.task_container()["image"].endswith("@sha256:" + "0" * 64)


def test_configured_image_uri_is_used_and_nothing_is_built(https_stack: ProgramRun) -> None:
    assert https_stack.of_type("docker-build:index:Image") == []
    assert https_stack.task_container()["image"] == HTTPS_CONFIG["image"]

"""ECS task definition, service and autoscaling over a mocked run."""

from __future__ import annotations

from app.config import Settings
from infra.iam import secret_arn_of
from tests.infra.harness import BASE_CONFIG, HTTPS_CONFIG, ProgramRun, strings_in

SECRET_ENV = {"PROXY_MONGODB_USERNAME", "PROXY_MONGODB_PASSWORD", "PROXY_SECRET_KEY", "PROXY_ADMIN_PASSWORD"}
MASTER_ENV = {"PROXY_DB_INIT_MASTER_USERNAME", "PROXY_DB_INIT_MASTER_PASSWORD"}


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
        assert {secret_arn_of(v) for v in secrets.values()} <= secret_arns
        assert not set(env(stack)) & expected
        plain = list(strings_in(stack.containers()))
        for secret in stack.secret_values():
            assert not any(secret in value for value in plain), f"{secret} reached the task definition"


def test_only_the_init_container_gets_the_master_credentials(http_stack: ProgramRun) -> None:
    proxy, init = http_stack.task_container(), http_stack.init_container()
    master = http_stack.named("database-master", "aws:secretsmanager/secret:Secret")
    app = http_stack.named("database-app", "aws:secretsmanager/secret:Secret")
    master_arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{master.name}-AbCdEf"
    app_arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{app.name}-AbCdEf"
    init_secrets = {s["name"]: s["valueFrom"] for s in init["secrets"]}
    assert init_secrets == {
        "PROXY_DB_INIT_MASTER_USERNAME": f"{master_arn}:username::",
        "PROXY_DB_INIT_MASTER_PASSWORD": f"{master_arn}:password::",
        "PROXY_MONGODB_USERNAME": f"{app_arn}:username::",
        "PROXY_MONGODB_PASSWORD": f"{app_arn}:password::",
    }
    proxy_secrets = {s["name"]: s["valueFrom"] for s in proxy["secrets"]}
    assert not any(master_arn in v for v in proxy_secrets.values())
    assert proxy_secrets["PROXY_MONGODB_PASSWORD"] == f"{app_arn}:password::"
    # the proxy starts only after db-init exited 0; db-init is one-shot, so not essential
    assert proxy["dependsOn"] == [{"containerName": "db-init", "condition": "SUCCESS"}]
    assert init["essential"] is False and proxy["essential"] is True
    assert init["command"] == ["claude-code-proxy", "db-init"]
    init_env = {e["name"]: e["value"] for e in init["environment"]}
    assert {k: v for k, v in env(http_stack).items() if k in init_env} == init_env
    assert init["readonlyRootFilesystem"] is True and init["user"] == proxy["user"]


def test_plain_environment_carries_the_apps_settings(http_stack: ProgramRun, https_stack: ProgramRun) -> None:
    plain = env(http_stack)
    assert set(plain) == {
        "PROXY_MONGODB_HOST",
        "PROXY_MONGODB_PORT",
        "PROXY_MONGODB_OPTIONS",
        "PROXY_MONGODB_DATABASE",
        "PROXY_MONGODB_MAX_POOL_SIZE",
        "PROXY_ADMIN_USERNAME",
        "PROXY_KMS_KEY_ID",
        "PROXY_KMS_REGION",
        "PROXY_BEDROCK_REGION",
        "PROXY_BEDROCK_INFERENCE_PROFILE_PREFIX",
        "PROXY_PUBLIC_BASE_URL",
        "PROXY_LOG_LEVEL",
        "PROXY_KEEPALIVE_TIMEOUT_S",
        "PROXY_COOKIE_SECURE",
    }
    assert plain["PROXY_MONGODB_HOST"].endswith(".docdb.amazonaws.com") and plain["PROXY_MONGODB_PORT"] == "27017"
    assert "retryWrites=false" in plain["PROXY_MONGODB_OPTIONS"] and "tls=true" in plain["PROXY_MONGODB_OPTIONS"]
    assert plain["PROXY_MONGODB_MAX_POOL_SIZE"] == "73"  # db.t4g.medium (500) * 0.9 / maxCount 6 - 2
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


def test_health_check_and_logs(http_stack: ProgramRun, run) -> None:
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


def test_fargate_task_size_from_config(run) -> None:
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


def test_keepalive_outlasts_the_alb_idle_timeout_and_the_app_reads_it(http_stack: ProgramRun, run) -> None:
    idle = http_stack.one("aws:lb/loadBalancer:LoadBalancer").inputs["idleTimeout"]
    assert int(env(http_stack)["PROXY_KEEPALIVE_TIMEOUT_S"]) == idle + 5
    custom = run({**BASE_CONFIG, "albIdleTimeoutS": 1800})
    assert int(env(custom)["PROXY_KEEPALIVE_TIMEOUT_S"]) == 1805
    # the name the stack sets is the typed setting the app reads (app/cli.py serve)
    settings = Settings(_env_file=None, keepalive_timeout_s=env(custom)["PROXY_KEEPALIVE_TIMEOUT_S"])
    assert settings.keepalive_timeout_s == 1805
    assert "keepalive_timeout_s" in Settings.model_fields


def test_every_plain_setting_the_stack_sets_is_an_app_setting(https_stack: ProgramRun) -> None:
    names = {*env(https_stack), *(s["name"] for s in https_stack.task_container()["secrets"])}
    fields = {f"PROXY_{name.upper()}" for name in Settings.model_fields}
    assert names <= fields, names - fields


def test_kms_region_is_the_stacks_region_not_bedrocks(run) -> None:
    stack = run({**BASE_CONFIG, "bedrockRegion": "us-west-2"})
    assert env(stack)["PROXY_KMS_REGION"] == "us-east-1"
    assert env(stack)["PROXY_BEDROCK_REGION"] == "us-west-2"

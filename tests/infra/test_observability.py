"""The metrics sidecar: what it scrapes, what it publishes, and that those names exist in the app."""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.records.events import UsageEvent
from app.usage.metrics import ProxyMetrics
from infra import observability as m
from infra.observability import SidecarSpec, agent_config, prometheus_scrape_config, publish_policy, sidecar_definition
from tests.infra.harness import CONFIG_METRICS_TOKEN, ProgramRun


class _Recorder:
    depth, write_failures, written, dropped, dead_lettered = 3, 1, 10, 0, 0


def exposed_sample_names() -> set[str]:
    """Every sample name the app's /metrics renders once it has seen traffic."""
    metrics = ProxyMetrics()
    metrics.watch(_Recorder())
    metrics.observe(UsageEvent(user_id="u", access_key_id="k", provider="bedrock", model="claude-sonnet-4-5",
                               status=200, latency_ms=12.0, fallback_reason="overloaded"))
    metrics.quota_rejected("key", "requests")
    body, _ = metrics.render()
    return {s.name for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def test_every_published_metric_is_a_name_the_app_exposes() -> None:
    exposed = exposed_sample_names()
    for name in (*m.SERVICE_METRICS, *m.PER_REASON_METRICS):
        assert name in exposed, f"{name} is not on /metrics"
    # the selectors the agent uses are anchored regexes of exactly those names
    declarations = agent_config("us-east-1", "/g")["logs"]["metrics_collected"]["prometheus"]["emf_processor"]
    selectors = {s for d in declarations["metric_declaration"] for s in d["metric_selectors"]}
    assert all(any(re.fullmatch(s, n) for s in selectors) for n in m.SERVICE_METRICS)
    assert not any(re.fullmatch(s, "claude_proxy_request_duration_seconds_bucket") for s in selectors)


def test_scrape_is_loopback_with_the_bearer_token_only_when_configured() -> None:
    plain = json.loads(prometheus_scrape_config("c", None))
    (job,) = plain["scrape_configs"]
    assert job["static_configs"] == [{"targets": ["127.0.0.1:8080"], "labels": {"ClusterName": "c"}}]
    assert job["metrics_path"] == "/metrics" and "authorization" not in job
    (job,) = json.loads(prometheus_scrape_config("c", "tok"))["scrape_configs"]
    assert job["authorization"] == {"type": "Bearer", "credentials": "tok"}


def test_sidecar_takes_the_scrape_config_in_clear_or_as_a_secret_never_both() -> None:
    spec = dict(image="i", region="us-east-1", emf_log_group_name="/e", app_log_group_name="/a")
    clear = sidecar_definition(SidecarSpec(**spec, scrape_config="{}", scrape_config_secret_arn=None))
    assert {e["name"] for e in clear["environment"]} == {"CW_CONFIG_CONTENT", "PROMETHEUS_CONFIG_CONTENT"}
    secret = sidecar_definition(SidecarSpec(**spec, scrape_config=None, scrape_config_secret_arn="arn:s"))
    assert secret["secrets"] == [{"name": "PROMETHEUS_CONFIG_CONTENT", "valueFrom": "arn:s"}]
    with pytest.raises(ValueError, match="either"):
        sidecar_definition(SidecarSpec(**spec, scrape_config="{}", scrape_config_secret_arn="arn:s"))


def test_the_task_runs_the_agent_beside_the_proxy(http_stack: ProgramRun) -> None:
    assert list(http_stack.containers()) == ["db-init", "proxy", m.SIDECAR_NAME]
    agent = http_stack.containers()[m.SIDECAR_NAME]
    assert agent["essential"] is False  # a metrics failure never stops the proxy
    assert agent["dependsOn"] == [{"containerName": "proxy", "condition": "HEALTHY"}]
    assert agent["image"].startswith("public.ecr.aws/cloudwatch-agent/cloudwatch-agent:")
    assert agent["linuxParameters"]["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e["value"] for e in agent["environment"]}
    config = json.loads(env["CW_CONFIG_CONTENT"])["logs"]["metrics_collected"]["prometheus"]
    assert config["prometheus_config_path"] == "env:PROMETHEUS_CONFIG_CONTENT"
    assert config["log_group_name"] == "/ecs/claude-code-proxy-test/metrics"
    (job,) = json.loads(env["PROMETHEUS_CONFIG_CONTENT"])["scrape_configs"]
    assert job["static_configs"][0]["labels"] == {"ClusterName": "claude-code-proxy-test"}
    emf = next(g for g in http_stack.of_type("aws:cloudwatch/logGroup:LogGroup") if g.inputs["name"].endswith("/metrics"))
    assert emf.inputs["kmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/keys-data-key-id"


def test_with_a_metrics_token_the_scrape_config_is_a_secret(https_stack: ProgramRun) -> None:
    agent = https_stack.containers()[m.SIDECAR_NAME]
    assert "PROMETHEUS_CONFIG_CONTENT" not in {e["name"] for e in agent["environment"]}
    (secret,) = agent["secrets"]
    assert secret["valueFrom"].startswith("arn:aws:secretsmanager:") and "scrape-config" in secret["valueFrom"]
    assert CONFIG_METRICS_TOKEN not in json.dumps(https_stack.containers())


def test_task_role_may_write_only_the_emf_log_group(http_stack: ProgramRun) -> None:
    policy = json.loads(http_stack.named("metrics-publish", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    (statement,) = policy["Statement"]
    assert set(statement["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}
    assert all("metrics-emf" in r for r in statement["Resource"])
    assert http_stack.named("metrics-publish", "aws:iam/rolePolicy:RolePolicy").inputs["role"] == "roles-task"
    assert publish_policy("arn:g")["Statement"][0]["Resource"] == ["arn:g", "arn:g:*"]

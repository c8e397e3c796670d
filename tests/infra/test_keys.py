"""KMS keys over a mocked run."""

from __future__ import annotations

import json

from tests.infra.harness import ProgramRun


def test_both_keys_rotate(http_stack: ProgramRun) -> None:
    keys = http_stack.of_type("aws:kms/key:Key")
    assert sorted(k.name for k in keys) == ["keys-app", "keys-data"]
    assert all(k.inputs["enableKeyRotation"] is True for k in keys)


def test_data_key_admits_cloudwatch_logs_and_alarms_app_key_only_iam(http_stack: ProgramRun) -> None:
    data = json.loads(http_stack.named("keys-data", "aws:kms/key:Key").inputs["policy"])
    services = {s["Principal"].get("Service") for s in data["Statement"]}
    assert {"logs.us-east-1.amazonaws.com", "cloudwatch.amazonaws.com"} <= services
    app = json.loads(http_stack.named("keys-app", "aws:kms/key:Key").inputs["policy"])
    assert [s["Principal"] for s in app["Statement"]] == [{"AWS": "arn:aws:iam::123456789012:root"}]

"""app/bedrock/cache_ttl.py and the vendored service model that lets cachePoint.ttl reach Bedrock
(app/bedrock/clients.py). Converse translations are validated against that model's shapes."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import os
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from app.bedrock.cache_ttl import order_cache_point_ttls, to_cache_ttl, to_native_cache_controls
from app.bedrock.clients import BOTOCORE_DATA, SERVICE_NAME, data_loader, service_model
from app.bedrock.invoke import to_invoke_body
from app.bedrock.models import resolve_model
from app.bedrock.request import to_converse_request
from app.bedrock.response import MalformedResponse, to_usage

ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}
FIVE_MIN = {"type": "ephemeral", "ttl": "5m"}
DEFAULT = {"type": "ephemeral"}
TTL_MODEL = resolve_model("claude-opus-4-5", overrides={}, profile_prefix="us")
NO_TTL_MODEL = resolve_model("claude-sonnet-4", overrides={}, profile_prefix="us")


def text(value: str, cache_control: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "text", "text": value, **({"cache_control": cache_control} if cache_control else {})}


def tool(name: str, cache_control: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "input_schema": {"type": "object"}, **({"cache_control": cache_control} if cache_control else {})}


def body_params(tools: Any, system: Any, last: Any) -> dict[str, Any]:
    return {"model": "claude-opus-4-5", "max_tokens": 100, "tools": tools, "system": system,
            "messages": [{"role": "user", "content": [text("q", last)]}]}


# -- the vendored model --------------------------------------------------------------------------------

def test_the_clients_load_the_vendored_model_and_it_is_the_recorded_file() -> None:
    source = json.loads((BOTOCORE_DATA / "SOURCE.json").read_text())
    _, path = data_loader().load_data_with_path(f"{SERVICE_NAME}/{source['api_version']}/service-2")
    assert path.startswith(str(BOTOCORE_DATA))
    raw = (BOTOCORE_DATA / source["file"]).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == source["sha256"]
    assert json.loads(gzip.decompress(raw))["metadata"]["apiVersion"] == source["api_version"]


def test_the_vendored_model_has_the_ttl_and_cache_details_members() -> None:
    model = service_model()
    assert model.shape_for("CachePointBlock").members["ttl"].enum == ["5m", "1h"]
    assert "cacheDetails" in model.shape_for("TokenUsage").members


def test_no_global_side_effect() -> None:
    """Other botocore sessions keep botocore's own search paths; no environment variable is set."""
    assert str(BOTOCORE_DATA) not in botocore.session.get_session().get_component("data_loader").search_paths
    assert str(BOTOCORE_DATA) not in os.environ.get("AWS_DATA_PATH", "")


def test_the_vendored_model_refuses_an_unknown_cache_point_member() -> None:
    """The validation the golden cases rely on can fail (botocore checks members, not enum values)."""
    request = to_converse_request(body_params([], [text("s", ONE_HOUR)], None), TTL_MODEL, betas=[])
    shape = service_model().operation_model("Converse").input_shape
    assert not ParamValidator().validate(request, shape).has_errors()
    request["system"][1]["cachePoint"]["scope"] = "global"
    assert ParamValidator().validate(request, shape).has_errors()


# -- cache_control.ttl -> cachePoint.ttl ------------------------------------------------------------------

@pytest.mark.parametrize(("cache_control", "model", "expected"), [
    (ONE_HOUR, TTL_MODEL, "1h"), (ONE_HOUR, NO_TTL_MODEL, None), (FIVE_MIN, TTL_MODEL, None),
    (DEFAULT, TTL_MODEL, None), ({"type": "ephemeral", "ttl": "2h"}, TTL_MODEL, None), (None, TTL_MODEL, None),
])
def test_to_cache_ttl(cache_control: Any, model: Any, expected: str | None) -> None:
    assert to_cache_ttl(cache_control, model) == expected


def test_order_raises_earlier_points_only() -> None:
    points = [{"type": "default"}, {"type": "default", "ttl": "1h"}, {"type": "default"}, {"type": "default"}]
    order_cache_point_ttls(points)
    assert [p.get("ttl") for p in points] == ["1h", "1h", None, None]


def test_converse_ttls_never_increase_after_the_four_point_cap() -> None:
    params = body_params([tool("a", DEFAULT), tool("b", FIVE_MIN)], [text("s1", DEFAULT), text("s2", DEFAULT)],
                         ONE_HOUR)
    request = to_converse_request(params, TTL_MODEL, betas=[])
    points = [b["cachePoint"] for blocks in (request["toolConfig"]["tools"], request["system"],
                                             request["messages"][0]["content"]) for b in blocks if "cachePoint" in b]
    assert len(points) == 4  # the first tool's breakpoint was the one dropped
    assert [p.get("ttl") for p in points] == ["1h"] * 4


# -- the native (InvokeModel) body ------------------------------------------------------------------------

def test_native_body_raises_earlier_breakpoints_and_leaves_params_alone() -> None:
    params = body_params([tool("a", DEFAULT)], [text("s", FIVE_MIN)], ONE_HOUR)
    params["messages"].insert(0, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": [text("out", DEFAULT)]}]})
    params["messages"].insert(1, {"role": "assistant", "content": [text("ok")]})
    before = copy.deepcopy(params)
    body = to_invoke_body(params, TTL_MODEL, betas=[])
    assert params == before
    assert body["tools"][0]["cache_control"] == ONE_HOUR
    assert body["system"][0]["cache_control"] == ONE_HOUR
    assert body["messages"][0]["content"][0]["content"][0]["cache_control"] == ONE_HOUR
    assert body["messages"][-1]["content"][0]["cache_control"] == ONE_HOUR


def test_native_body_keeps_5m_after_1h_and_drops_a_1h_the_model_lacks() -> None:
    params = body_params([tool("a", ONE_HOUR)], [text("s", DEFAULT)], FIVE_MIN)
    body = to_invoke_body(params, TTL_MODEL, betas=[])
    assert [body["tools"][0]["cache_control"], body["system"][0]["cache_control"],
            body["messages"][0]["content"][0]["cache_control"]] == [ONE_HOUR, DEFAULT, FIVE_MIN]
    old = to_invoke_body({**params, "model": "claude-sonnet-4"}, NO_TTL_MODEL, betas=[])
    assert old["tools"][0]["cache_control"] == DEFAULT


def test_native_cache_controls_ignore_odd_shapes() -> None:
    body: dict[str, Any] = {"system": "plain", "messages": [{"role": "user", "content": "hi"}, "junk"]}
    to_native_cache_controls(body, TTL_MODEL)
    assert body == {"system": "plain", "messages": [{"role": "user", "content": "hi"}, "junk"]}


# -- usage --------------------------------------------------------------------------------------------------

def test_one_hour_writes_are_capped_at_the_writes() -> None:
    usage = to_usage({"inputTokens": 1, "outputTokens": 1, "cacheWriteInputTokens": 100,
                      "cacheDetails": [{"ttl": "1h", "inputTokens": 150}]})
    assert usage["cache_creation"] == {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 100}


@pytest.mark.parametrize("details", ["1h", [{"ttl": "1h", "inputTokens": -1}], ["x"], [{"ttl": "1h", "inputTokens": "9"}]])
def test_malformed_cache_details_raise(details: Any) -> None:
    with pytest.raises(MalformedResponse):
        to_usage({"inputTokens": 1, "outputTokens": 1, "cacheWriteInputTokens": 10, "cacheDetails": details})

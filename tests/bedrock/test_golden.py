"""Golden cases: tests/bedrock/golden/{request,response,stream}/NAME.json, one behaviour each.

request:  input {params, model, profile_prefix?, overrides?, betas?} -> expected Converse kwargs
          (or expected_error: a substring of the InvalidRequest message); every expected request
          also validates against botocore's Converse and ConverseStream input shapes, from the
          vendored service model the proxy's clients load (app/bedrock/clients.service_model).
response: input {response, model, message_id, stop_sequences?, omit_thinking?} -> expected Anthropic Message.
stream:   input {events, model, message_id, stop_sequences?, omit_thinking?} -> expected Anthropic events
          (all feed() outputs, then finish()).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.validate import ParamValidator

from app.bedrock.clients import service_model as vendored_service_model
from app.bedrock.models import resolve_model
from app.bedrock.request import to_converse_request
from app.bedrock.response import to_message
from app.bedrock.stream import StreamTranslator, encode_sse
from app.errors import InvalidRequest
from tests.bedrock.golden_io import cases, from_json, load, to_json


def run_request(case: dict[str, Any]) -> Any:
    data = case["input"]
    model = resolve_model(data["model"], overrides=data.get("overrides", {}),
                          profile_prefix=data.get("profile_prefix", "us"))
    return to_converse_request(data["params"], model, betas=data.get("betas", []))


def run_response(case: dict[str, Any]) -> Any:
    data = case["input"]
    return to_message(from_json(data["response"]), model=data["model"], message_id=data["message_id"],
                      stop_sequences=data.get("stop_sequences"), omit_thinking=data.get("omit_thinking", False))


def run_stream(case: dict[str, Any]) -> list[dict[str, Any]]:
    data = case["input"]
    translator = StreamTranslator(data["model"], data["message_id"], stop_sequences=data.get("stop_sequences"),
                                  omit_thinking=data.get("omit_thinking", False))
    out: list[dict[str, Any]] = []
    for event in from_json(data["events"]):
        out += translator.feed(event)
    return out + translator.finish()


RUNNERS = {"request": run_request, "response": run_response, "stream": run_stream}


@pytest.fixture(scope="module")
def service_model() -> Any:
    return vendored_service_model()


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_there_are_enough_golden_cases() -> None:
    assert sum(len(cases(kind)) for kind in RUNNERS) >= 25


@pytest.mark.parametrize("path", cases("request"), ids=_ids(cases("request")))
def test_request_golden(path: Path, service_model: Any) -> None:
    case = load(path)
    assert case["description"]
    params_before = json.dumps(case["input"]["params"], sort_keys=True)
    if "expected_error" in case:
        with pytest.raises(InvalidRequest) as info:
            run_request(case)
        assert case["expected_error"] in info.value.message
        return
    request = run_request(case)
    assert json.dumps(case["input"]["params"], sort_keys=True) == params_before  # params not mutated
    assert to_json(request) == case["expected"]
    for operation in ("Converse", "ConverseStream"):
        report = ParamValidator().validate(request, service_model.operation_model(operation).input_shape)
        assert not report.has_errors(), report.generate_report()
    if not case["input"].get("overrides"):
        assert not request["modelId"].startswith("anthropic."), "foundation-model ids are not on-demand"


@pytest.mark.parametrize("path", cases("response"), ids=_ids(cases("response")))
def test_response_golden(path: Path) -> None:
    case = load(path)
    assert case["description"]
    message = run_response(case)
    assert message == case["expected"]
    assert message["model"] == case["input"]["model"]
    assert "anthropic." not in json.dumps(message)  # no Bedrock model id leaks to the client


@pytest.mark.parametrize("path", cases("stream"), ids=_ids(cases("stream")))
def test_stream_golden(path: Path) -> None:
    case = load(path)
    assert case["description"]
    events = run_stream(case)
    assert events == case["expected"]
    types = [e["type"] for e in events]
    assert types[0] == "message_start" and types[-1] == "message_stop" and types.count("message_stop") == 1
    assert events[0]["message"]["model"] == case["input"]["model"]
    wire = b"".join(encode_sse(e) for e in events)
    assert b"anthropic." not in wire  # no Bedrock model id leaks to the client
    for event in events:  # never an empty text block
        if event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta":
            assert event["delta"]["text"]

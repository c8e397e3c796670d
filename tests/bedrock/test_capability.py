"""app/bedrock/capability.py: Bedrock's capability refusals -> the token Claude Code recovers from."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from app.bedrock.capability import INPUT_TOO_LONG, CapabilityRejected, capability_class, client_message, with_betas
from app.bedrock.errors import map_bedrock_error
from app.errors import InvalidRequest

# (Bedrock's ValidationException message, the class the client must see). Wordings as Bedrock
# passes Anthropic's through, or as Converse words them.
CASES = [
    ("messages.3: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter",
     "mid_conv_system"),
    ("messages.2.content.0.text.cache_control: Extra inputs are not permitted", "cache_control_field"),
    ("messages.1.content.0: Invalid `signature` in `thinking` block", "thinking_signature"),
    ("The provided `signature` in `thinking` block is invalid", "thinking_signature"),
    ("messages.3.content.0.thinking.signature: Field required", "thinking_signature"),
    ("Invalid `data` in `redacted_thinking` block", "thinking_signature"),
    ("The model doesn't support the reasoningContent.reasoningText.signature field", "thinking_signature"),
    ("thinking.type: enabled is not supported for this model. Use thinking.type: adaptive",
     "thinking_type:enabled"),
    ("adaptive thinking is not supported on this model", "thinking_type:adaptive"),
    ("output_config.format: Extra inputs are not permitted", "structured_outputs_unsupported"),
    ("This model does not support the effort parameter.", "effort_unsupported"),
    ("Too much media: 90 document pages + 20 images > 100", "media_budget"),
    ("messages.0.content.1.image.source.base64: image exceeds 5 MB maximum", "image_block"),
    ("Could not process PDF", "document_block"),
    ("Input is too long for requested model.", "prompt_too_long"),
    ("prompt is too long: 215000 tokens > 200000 maximum", "prompt_too_long"),
    ("input length and `max_tokens` exceed context limit: 190000 + 32000 > 200000", "max_tokens_context_overflow"),
]


@pytest.mark.parametrize(("message", "expected"), CASES)
def test_each_refusal_gets_its_class(message: str, expected: str) -> None:
    assert capability_class(message) == expected
    assert client_message(message) == f"capability_rejected: {expected}"


@pytest.mark.parametrize("message", [
    "A conversation must alternate between user and assistant roles.",
    "The model returned the following errors: max_tokens: must be greater than 0",
    "Malformed input request: #: extraneous key [foo] is not permitted",
])
def test_other_wordings_keep_bedrocks_message(message: str) -> None:
    assert capability_class(message) is None
    error = map_bedrock_error(ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "Converse"))
    assert type(error) is InvalidRequest and error.message == f"Bedrock: {message}"


def test_the_token_is_the_whole_message_and_bedrocks_wording_is_kept_for_the_log() -> None:
    message = "messages.1.content.0: Invalid `signature` in `thinking` block"
    error = map_bedrock_error(ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "Converse"))
    assert isinstance(error, CapabilityRejected) and error.status_code == 400
    assert error.message == "capability_rejected: thinking_signature"
    assert error.bedrock_message == message
    assert error.headers["x-should-retry"] == "false"


def test_input_is_too_long_goes_out_exactly() -> None:
    assert client_message("Input is too long.") == INPUT_TOO_LONG


def test_a_rejected_beta_is_named_verbatim_only_when_the_caller_sent_it() -> None:
    message = "invalid beta flag: interleaved-thinking-2025-05-14 is not supported"
    plain = map_bedrock_error(ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "Converse"))
    assert type(plain) is InvalidRequest  # without the request's betas nothing can be named
    refined = with_betas(plain, ["claude-code-20250219", "interleaved-thinking-2025-05-14"])
    assert refined.message == "capability_rejected: beta_header:interleaved-thinking-2025-05-14"
    assert with_betas(plain, ["claude-code-20250219"]) is plain
    assert with_betas(InvalidRequest("Bedrock: invalid beta flag"), ["x-1"]).message == "Bedrock: invalid beta flag"

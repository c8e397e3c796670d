"""Bedrock's 400s that reject a capability -> the ``capability_rejected: <class>`` token Claude Code
recovers from (pure: no I/O).

Claude Code recovers from an upstream refusing a capability (strips thinking blocks and retries,
swaps the thinking type, drops effort or a beta, compacts ...) by matching a 400's (or 413's)
``error.message`` against Anthropic's own wording. A Bedrock ValidationException words these
differently and carries AWS names, so a gateway that authors the error body (as this proxy does
for Bedrock) classifies the message and sends the stable token as the whole ``error.message``;
the client matches it as it would the wording, and the session goes on instead of failing the
turn. Classes are tried in the contract's order (the first match wins) and conservatively: a
wording not recognised here keeps Bedrock's message, since a wrong token triggers the wrong
recovery. One more rule of the contract: Bedrock's 400 whose whole message is ``Input is too
long.`` is sent exactly as that (the client's recovery matches the whole message).

Source: the gateway contract shipped in Claude Code 2.1.330 ("Errors", the capability table under
"Customer-routed inference"; https://code.claude.com/docs/en/llm-gateway-protocol).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from app.errors import InvalidRequest

TOKEN_PREFIX = "capability_rejected: "
INPUT_TOO_LONG = "Input is too long."

# (class, pattern) in the contract's classification order; patterns run on the message as is
# (case-insensitive) and are anchored on the field or wording each class names.
_CLASSES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in (
    ("mid_conv_system", r"unexpected role .{0,3}system|role .{0,3}system.{0,3} (?:is )?not (?:supported|allowed)"
                        r"|system messages? (?:are|is) only (?:supported|allowed) at the (?:start|beginning)"),
    ("cache_control_field", r"cache_control.{0,40}(?:extra inputs are not permitted|not supported|not permitted)"
                            r"|(?:extraneous key|unknown field).{0,10}cache_?(?:control|point)"),
    ("thinking_signature", r"signature.{0,60}(?:thinking|reasoning)|(?:thinking|reasoning|redacted).{0,60}signature"
                           r"|invalid .{0,3}data.{0,3} in .{0,3}redacted_thinking"
                           r"|(?:thinking|redacted_thinking).{0,40}cannot be modified"),
    ("thinking_type:enabled", r"thinking\.type.{0,4}enabled.{0,40}not supported"
                              r"|enabled thinking is not supported"),
    ("thinking_type:adaptive", r"thinking\.type.{0,4}adaptive.{0,40}not supported"
                               r"|adaptive thinking is not supported"),
    ("structured_outputs_unsupported", r"output_config\.format.{0,6}extra inputs are not permitted"),
    ("effort_unsupported", r"does not support the effort parameter"
                           r"|output_config.{0,40}(?:extra inputs are not permitted|requires a model that supports)"),
    ("media_budget", r"too much media"),
    ("image_block", r"could not process image|messages\.\d+\.content\.\d+\.image"),
    ("document_block", r"could not process pdf|does not support pdf|messages\.\d+\.content\.\d+\.document"),
    ("prompt_too_long", r"prompt is too long|input is too long for (?:the )?requested model"),
    ("max_tokens_context_overflow", r"input length and .{0,2}max_tokens.{0,2} exceed context limit"),
))
_BETA_REJECTED = re.compile(r"beta", re.IGNORECASE)


class CapabilityRejected(InvalidRequest):
    """400 ``invalid_request_error`` whose message is the client-facing one (:func:`client_message`);
    ``bedrock_message`` keeps Bedrock's own wording for the proxy's log line."""

    def __init__(self, message: str, *, bedrock_message: str) -> None:
        super().__init__(message)
        self.bedrock_message = bedrock_message


def token(capability_class: str) -> str:
    """``capability_rejected: <class>`` (the whole ``error.message``)."""
    return TOKEN_PREFIX + capability_class


def capability_class(message: str, betas: Iterable[str] = ()) -> str | None:
    """The class of a Bedrock ValidationException ``message``, or None for any other wording.

    ``betas``: the ``anthropic-beta`` values the caller sent; a message about a beta that names
    one of them verbatim is ``beta_header:<value>`` (one it does not name stays unclassified).
    """
    for name, pattern in _CLASSES:
        if pattern.search(message):
            return name
    if _BETA_REJECTED.search(message):
        for beta in betas:
            if beta and beta in message:
                return f"beta_header:{beta}"
    return None


def client_message(message: str, betas: Iterable[str] = ()) -> str | None:
    """What the client should see instead of a Bedrock 400's ``message``: the token, ``Input is
    too long.`` for that exact message, or None (keep Bedrock's message)."""
    if message.strip() == INPUT_TOO_LONG:
        return INPUT_TOO_LONG
    name = capability_class(message, betas)
    return token(name) if name is not None else None


def rejected(bedrock_message: str, betas: Iterable[str] = ()) -> InvalidRequest:
    """The error for a Bedrock ValidationException: CapabilityRejected when :func:`client_message`
    recognises it, else InvalidRequest ``"Bedrock: <message>"``."""
    message = client_message(bedrock_message, betas)
    if message is None:
        return InvalidRequest(f"Bedrock: {bedrock_message}")
    return CapabilityRejected(message, bedrock_message=bedrock_message)


def with_betas(error: InvalidRequest, betas: Iterable[str]) -> InvalidRequest:
    """``error`` re-classified knowing the caller's betas (the ``beta_header:<value>`` class needs
    them; :func:`app.bedrock.errors.map_bedrock_error` has no request at hand)."""
    if isinstance(error, CapabilityRejected) or not error.message.startswith("Bedrock: "):
        return error
    betas = tuple(betas)
    if not betas:
        return error
    refined = rejected(error.message.removeprefix("Bedrock: "), betas)
    return refined if isinstance(refined, CapabilityRejected) else error

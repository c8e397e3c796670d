"""Which Bedrock API serves a request: Converse (the default) or InvokeModel with the native body
(pure; no I/O).

Converse stays the default (with no setting, every request): it also serves accounts whose policies
refuse InvokeModel, and its translation is the one every Bedrock model takes. InvokeModel /
InvokeModelWithResponseStream serve, per model (Anthropic model ids or ``fnmatch`` globs, matched
case-blind against the id as the client sent it and against its base id without date or ``[1m]``:
``claude-opus-4-6``, ``claude-opus-*``, ``*``):

1. ``configured``: every request for a model matching ``invoke_models`` (``PROXY_BEDROCK_INVOKE_MODELS``);
2. ``tool_search``: for a model matching ``invoke_when_needed_models``
   (``PROXY_BEDROCK_INVOKE_WHEN_NEEDED_MODELS``), a request Converse cannot carry -- tool search: a
   ``tool_search_tool_*`` tool or a tool with ``defer_loading: true``, which Claude Code sends with
   its ToolSearch tool -- when Bedrock serves tool search for the model (``invoke.supports_tool_search``).
   Otherwise Converse serves it, sending the deferred tools as ordinary ones and a ``tool_reference``
   as text (the answer is the same, the prompt longer).

Source: issue 13 ("InvokeModel as an option"); docs/translation.md#invokemodel.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Literal

from app.bedrock.invoke import needs_tool_search, supports_tool_search
from app.bedrock.models import BedrockModel, normalize

InvokeReason = Literal["configured", "tool_search"]


@dataclass(frozen=True)
class ApiChoice:
    """``invoke_reason(params, model)``: why a request goes to InvokeModel, or None for Converse."""

    invoke_models: tuple[str, ...] = ()
    invoke_when_needed_models: tuple[str, ...] = ()

    def invoke_reason(self, params: dict[str, Any], model: BedrockModel) -> InvokeReason | None:
        if matches(model, self.invoke_models):
            return "configured"
        if (matches(model, self.invoke_when_needed_models) and needs_tool_search(params)
                and supports_tool_search(model)):
            return "tool_search"
        return None


def matches(model: BedrockModel, patterns: tuple[str, ...]) -> bool:
    """True when ``model`` (the client's id, or its base id) matches one of ``patterns``."""
    names = {model.anthropic_model.strip().lower(), normalize(model.anthropic_model)[0]}
    return any(fnmatch.fnmatchcase(name, pattern.strip().lower())
               for pattern in patterns if pattern.strip() for name in names)

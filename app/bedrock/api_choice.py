"""Which Bedrock API serves a request: Converse (the default) or InvokeModel with the native body
(pure; no I/O).

Converse stays the default: it also serves accounts whose policies refuse InvokeModel, and its
translation is the one every Bedrock model takes. InvokeModel / InvokeModelWithResponseStream serve:

1. ``configured``: every request for a model matching one of ``invoke_models``
   (``PROXY_BEDROCK_INVOKE_MODELS``: Anthropic model ids or ``fnmatch`` globs, matched case-blind
   against the id as the client sent it and against its base id, without date or ``[1m]``:
   ``claude-opus-4-6``, ``claude-opus-*``, ``*``);
2. ``tool_search``: with ``invoke_for_tool_search`` (``PROXY_BEDROCK_INVOKE_FOR_TOOL_SEARCH``, on by
   default), a request Converse cannot carry -- tool search (a ``tool_search_tool_*`` tool or a
   tool with ``defer_loading: true``) -- for a model Bedrock serves tool search for
   (``invoke.supports_tool_search``). A model without it keeps Converse, which sends the deferred
   tools as ordinary ones (the answer is the same, the prompt longer).

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
    invoke_for_tool_search: bool = True

    def configured(self, model: BedrockModel) -> bool:
        """True when ``model`` (the client's id, or its base id) matches a pattern of ``invoke_models``."""
        names = {model.anthropic_model.strip().lower(), normalize(model.anthropic_model)[0]}
        return any(fnmatch.fnmatchcase(name, pattern.strip().lower())
                   for pattern in self.invoke_models if pattern.strip() for name in names)

    def invoke_reason(self, params: dict[str, Any], model: BedrockModel) -> InvokeReason | None:
        if self.configured(model):
            return "configured"
        if self.invoke_for_tool_search and needs_tool_search(params) and supports_tool_search(model):
            return "tool_search"
        return None

"""Constants shared by the Converse translators: what is mapped, what is dropped on purpose and why.

Converse request/response shapes are botocore's ``bedrock-runtime`` service model as vendored in
app/bedrock/botocore_data/ (botocore 1.44.8's, see SOURCE.json there; app/bedrock/clients.py loads it);
Anthropic's are https://docs.anthropic.com/en/api/messages. docs/translation.md renders these tables for humans.
"""

from __future__ import annotations

MAX_CACHE_POINTS = 4  # Anthropic and Bedrock both allow at most 4 cache checkpoints per request

# Top-level Messages fields that are translated (see request.py).
MAPPED_FIELDS = frozenset({
    "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences",
    "tools", "tool_choice", "thinking", "metadata", "output_config",
})

# Top-level fields dropped on purpose, each with the reason (docs/translation.md lists them).
DROPPED_FIELDS: dict[str, str] = {
    "stream": "chosen by the caller: Converse vs ConverseStream",
    "context_management": "server-side context editing is an Anthropic API feature; Converse has no field for it",
    "service_tier": "Anthropic capacity tiers do not exist on Bedrock",
    "container": "code-execution containers are Anthropic-hosted",
    "mcp_servers": "the MCP connector runs on Anthropic's servers",
    "inference_geo": "Bedrock geography is chosen by the inference profile prefix",
    "speed": "fast mode is an Anthropic API research preview",
    "cache_control": "top-level automatic caching has no Converse equivalent; block-level cache_control is mapped",
    "betas": "betas travel in the anthropic-beta header and are filtered by SUPPORTED_BETAS",
}

# Fields inside blocks and objects that are dropped on purpose, each with the reason.
DROPPED_BLOCK_FIELDS: dict[str, str] = {
    "cache_control.scope": "no Converse field; Bedrock caches per account",
    "thinking.display": "not part of Bedrock's thinking object; \"omitted\" is applied to the answer by the proxy "
                        "(response.to_message / stream.StreamTranslator omit_thinking)",
    "thinking.* other than type/budget_tokens": "not in Bedrock's documented thinking object",
}

# anthropic-beta values Bedrock's Claude models accept in additionalModelRequestFields.anthropic_beta.
# Everything else (claude-code-*, oauth-*, fine-grained-tool-streaming-*, prompt-caching-scope-*,
# context-management-*, ...) is dropped: Bedrock answers 400 to betas it does not know.
# Source: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html
SUPPORTED_BETAS = frozenset({
    "interleaved-thinking-2025-05-14",  # only for models with supports_interleaved_thinking
    "context-1m-2025-08-07",  # only for models with supports_context_1m
    "token-efficient-tools-2025-02-19",
    "output-128k-2025-02-19",
    "dev-full-thinking-2025-05-14",
    "effort-2025-11-24",
})
BETA_INTERLEAVED = "interleaved-thinking-2025-05-14"
BETA_CONTEXT_1M = "context-1m-2025-08-07"

# Tool fields dropped on purpose: defer_loading (tool search is a server tool, so deferred tools are
# sent as ordinary tools), input_examples, strict (no Converse field), eager_input_streaming,
# allowed_callers; cache_control becomes a cachePoint entry after the tool.

# Content blocks produced by Anthropic-run server tools; Bedrock cannot replay them, so they are
# dropped from history (the model still sees the surrounding text).
SERVER_BLOCK_TYPES = frozenset({
    "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
    "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "mcp_tool_use",
    "mcp_tool_result", "container_upload", "tool_search_tool_result", "tool_reference",
})

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                 "image/webp": "webp"}

# Converse stopReason -> Anthropic stop_reason.
STOP_REASONS = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
    "model_context_window_exceeded": "model_context_window_exceeded",
}

# Asking Converse for the native field tells us which stop sequence matched (Converse's own
# stopReason does not). Source: API_runtime_Converse.html#additionalModelResponseFieldPaths
STOP_SEQUENCE_PATH = "/stop_sequence"

# A tool Converse needs when history holds toolUse/toolResult blocks but no tool is offered
# ("The toolConfig field must be defined when using toolUse and toolResult content blocks").
PLACEHOLDER_TOOL = {"toolSpec": {
    "name": "no_tools_available",
    "description": "Placeholder: no tools are available in this turn. Never call this tool.",
    "inputSchema": {"json": {"type": "object", "properties": {}}},
}}

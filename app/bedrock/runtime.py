"""BedrockRuntime: the proxy's only Amazon Bedrock API calls (Converse, ConverseStream, InvokeModel,
InvokeModelWithResponseStream, CountTokens),
over the clients of ``clients.py``, with every failure translated to a ProxyError by
``map_bedrock_errors`` (app/bedrock/errors.py).

Sources: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
/API_runtime_ConverseStream.html, /API_runtime_InvokeModel.html,
/API_runtime_InvokeModelWithResponseStream.html, /API_runtime_CountTokens.html
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from app.bedrock.clients import BedrockClients
from app.bedrock.errors import map_bedrock_errors

JSON = "application/json"  # contentType / accept of the InvokeModel calls


class BedrockRuntime:
    """Async Bedrock Runtime calls. All methods raise ProxyError (see ``map_bedrock_error``);
    ``bearer_token`` selects a Bedrock API key instead of the default AWS credential chain.
    ``clients``: the pool (connection counters, per-credential clients). Call ``aclose()`` on shutdown."""

    def __init__(self, clients: BedrockClients) -> None:
        self.clients = clients

    async def converse(self, request: dict[str, Any], *, bearer_token: str | None = None) -> dict[str, Any]:
        """Converse. ``request``: botocore kwargs (modelId, messages, system, inferenceConfig,
        toolConfig, additionalModelRequestFields, ...). Returns botocore's response dict
        (output.message, stopReason, usage, metrics, ResponseMetadata)."""
        async with self.clients.lease(bearer_token) as client:
            with map_bedrock_errors():
                return await client.converse(**request)

    def converse_stream(self, request: dict[str, Any], *,
                        bearer_token: str | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """ConverseStream as an async generator of events, each a one-key dict in botocore's
        shape: ``{"messageStart": {...}}``, ``{"contentBlockDelta": {...}}``, ...,
        ``{"metadata": {"usage": {...}, "metrics": {"latencyMs": ...}}}``.

        Nothing is sent until the first ``anext``. Errors before the first event, exception
        frames, corrupt frames (bad CRC, garbage) and disconnects mid-stream raise ProxyError.
        Stopping early (``aclose()``, or a cancelled consumer) closes the HTTP response, so its
        connection is not reused.
        """
        return self._event_stream(bearer_token, "converse_stream", "stream", request)

    async def invoke_model(self, model_id: str, body: bytes, *, bearer_token: str | None = None) -> Any:
        """InvokeModel with a native body (JSON bytes, app/bedrock/invoke.py); returns the answer's
        JSON body parsed (for Claude: a Messages API ``Message``; app/bedrock/invoke_response.py checks
        it). A body that is not JSON raises ProxyError (502, malformed response)."""
        async with self.clients.lease(bearer_token) as client:
            with map_bedrock_errors():
                response = await client.invoke_model(modelId=model_id, body=body, contentType=JSON, accept=JSON)
                async with response["body"] as stream:
                    return json.loads(await stream.read())

    def invoke_model_with_response_stream(self, model_id: str, body: bytes, *,
                                          bearer_token: str | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """InvokeModelWithResponseStream as an async generator of botocore's events:
        ``{"chunk": {"bytes": b'<one native stream event as JSON>'}}``. Errors, exception frames,
        corrupt frames, disconnects and early stops behave as in :meth:`converse_stream`."""
        return self._event_stream(bearer_token, "invoke_model_with_response_stream", "body",
                                  {"modelId": model_id, "body": body, "contentType": JSON, "accept": JSON})

    async def _event_stream(self, bearer_token: str | None, operation: str, field: str,
                            params: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """The events of a streaming operation's ``field`` (botocore's EventStream), errors mapped,
        the HTTP response closed however the iteration ends."""
        async with self.clients.lease(bearer_token) as client:
            with map_bedrock_errors():
                response = await getattr(client, operation)(**params)
            stream = response[field]
            try:
                with map_bedrock_errors():
                    async for event in stream:
                        yield event
            finally:
                stream.close()

    async def count_tokens(self, model_id: str, converse_input: dict[str, Any] | None = None, *,
                           invoke_body: bytes | None = None, bearer_token: str | None = None) -> int:
        """CountTokens; returns ``inputTokens`` (tokens). Exactly one input form: ``converse_input``
        (``messages``, ``system``: botocore's ConverseTokensRequest, which has no ``toolConfig``) or
        ``invoke_body`` (the native InvokeModel body as JSON bytes, tools included; app/bedrock/invoke.py)."""
        if (converse_input is None) == (invoke_body is None):
            raise ValueError("count_tokens: pass converse_input or invoke_body")
        count_input = ({"converse": converse_input} if converse_input is not None
                       else {"invokeModel": {"body": invoke_body}})
        async with self.clients.lease(bearer_token) as client:
            with map_bedrock_errors():
                response = await client.count_tokens(modelId=model_id, input=count_input)
                return int(response["inputTokens"])

    async def aclose(self) -> None:
        """Close every client (in-flight calls fail with a connection error)."""
        await self.clients.aclose()

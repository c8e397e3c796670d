"""Bedrock failures -> the ProxyError the client sees (Anthropic's status and ``error.type``).

Pure: no I/O. Used by app/bedrock/clients.py and runtime.py, through ``map_bedrock_errors()``, around every call
and around the iteration of a ConverseStream. Source:
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html#API_runtime_ConverseStream_Errors
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from botocore.eventstream import ParserError as EventStreamParserError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from app.bedrock.capability import rejected
from app.errors import (
    ApiError,
    InvalidRequest,
    NotFound,
    Overloaded,
    PermissionDenied,
    ProxyError,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

# Errors a Bedrock call or stream iteration can raise; anything else is a bug and propagates.
BEDROCK_ERRORS: tuple[type[BaseException], ...] = (
    ClientError, BotoCoreError, aiohttp.ClientError, asyncio.TimeoutError)

# What botocore raises for an answer it cannot read: event-stream frames with a bad CRC, a bad
# length or garbage (``botocore.eventstream.ParserError``: ChecksumMismatch, InvalidHeadersLength,
# InvalidPayloadLength, DuplicateHeader ...), a body its parser rejects (ResponseParserError), and
# -- because botocore's JSON parser trusts the shapes -- AttributeError / TypeError / ValueError /
# KeyError for a body of the wrong types (``"output": "text"``, ``"inputTokens": "abc"``). None of
# them is documented as a call's error, so they are caught only around the library call itself.
MALFORMED_ANSWER_ERRORS: tuple[type[BaseException], ...] = (
    EventStreamParserError, ResponseParserError, AttributeError, TypeError, ValueError, KeyError)

# Error codes (HTTP ``x-amzn-ErrorType`` or the stream's ``:exception-type``, first letter
# upper-cased) -> ProxyError class. Unknown codes are ApiError.
ERROR_CODES: dict[str, type[ProxyError]] = {
    "ThrottlingException": RateLimited,
    "ServiceQuotaExceededException": RateLimited,
    "ValidationException": InvalidRequest,
    "AccessDeniedException": PermissionDenied,
    # STS/SigV4 and API-key rejections of the proxy's own AWS credential.
    "UnrecognizedClientException": PermissionDenied,
    "InvalidSignatureException": PermissionDenied,
    "ExpiredTokenException": PermissionDenied,
    "ResourceNotFoundException": NotFound,
    "ModelTimeoutException": UpstreamTimeout,
    "ServiceUnavailableException": Overloaded,
    "ModelNotReadyException": Overloaded,
    "InternalServerException": ApiError,
    "ModelStreamErrorException": ApiError,
    "ModelErrorException": ApiError,
}

# Appended to 403s: the credential Bedrock refused is the proxy's own, never the developer's.
PROXY_ACCESS_REFUSED = ("Amazon Bedrock refused this proxy's own AWS access: its IAM role, or the Bedrock API "
                        "key registered for your access key. Your Anthropic API key is not involved; "
                        "ask the proxy's administrator to grant Bedrock access")


def map_bedrock_error(exc: BaseException) -> ProxyError:
    """A Bedrock call's exception -> the ProxyError the client should see. Pure; never raises.

    =========================================================  ===================  ===========
    Bedrock / transport error                                  ProxyError           status
    =========================================================  ===================  ===========
    ThrottlingException, ServiceQuotaExceededException         RateLimited          429
    ValidationException, botocore ParamValidationError         InvalidRequest       400
    AccessDeniedException (+ UnrecognizedClient,               PermissionDenied     403
    InvalidSignature, ExpiredToken)
    ResourceNotFoundException                                  NotFound             404
    ModelTimeoutException                                      UpstreamTimeout      504
    ServiceUnavailableException, ModelNotReadyException        Overloaded           529
    InternalServerException, ModelStreamErrorException,        ApiError             500
    ModelErrorException, any other ClientError / BotoCoreError
    aiohttp.ClientError, EndpointConnectionError,              UpstreamUnavailable  502
    ConnectionClosedError, ConnectTimeoutError
    ReadTimeoutError, asyncio.TimeoutError (incl. aiohttp's    UpstreamTimeout      504
    socket read timeouts mid-stream)
    a malformed answer (MALFORMED_ANSWER_ERRORS: bad           UpstreamUnavailable  502
    event-stream CRC or framing, unparseable or mistyped body)
    =========================================================  ===================  ===========

    The same codes arrive as HTTP errors (``ClientError``) and as exception frames mid-stream
    (``EventStreamError``, whose codes are camelCase member names such as
    ``throttlingException``). Messages read ``"Bedrock: <Bedrock's message>"``, except a
    ValidationException that refuses a capability (thinking, a signature, a beta, a mid-conversation
    system message ...): that one is ``CapabilityRejected`` with the ``capability_rejected: <class>``
    token Claude Code recovers from (app/bedrock/capability.py). They never include credentials (botocore messages carry only the operation, code and endpoint URL).
    """
    if isinstance(exc, ProxyError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        code = str(error.get("Code") or "")
        code = code[:1].upper() + code[1:]
        message = str(error.get("Message") or code or exc)
        if ERROR_CODES.get(code) is PermissionDenied:
            return PermissionDenied(f"Bedrock: {message} ({PROXY_ACCESS_REFUSED})")
        if ERROR_CODES.get(code) is InvalidRequest:
            return rejected(message)  # a refused capability -> the token Claude Code recovers from
        return ERROR_CODES.get(code, ApiError)(f"Bedrock: {message}")
    if isinstance(exc, ParamValidationError):
        return InvalidRequest(f"Bedrock: {exc}")
    # aiohttp's ServerTimeoutError is both a ClientError and a TimeoutError: timeouts first.
    if isinstance(exc, (ReadTimeoutError, asyncio.TimeoutError)):
        return UpstreamTimeout(f"Bedrock: read timed out ({type(exc).__name__})")
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError,
                        aiohttp.ClientError)):
        return UpstreamUnavailable(f"Bedrock: connection failed ({type(exc).__name__}: {exc})")
    if isinstance(exc, MALFORMED_ANSWER_ERRORS):
        # The parser's message may quote the body: only the exception's name goes out.
        return UpstreamUnavailable(f"Bedrock: malformed response ({type(exc).__name__})")
    return ApiError(f"Bedrock: {type(exc).__name__}: {exc}")


@contextmanager
def map_bedrock_errors() -> Iterator[None]:
    """``with map_bedrock_errors(): await client.converse(...)``: raises the mapped ProxyError
    (``from`` the original) for BEDROCK_ERRORS and MALFORMED_ANSWER_ERRORS; anything else
    (ProxyError, cancellation, GeneratorExit) passes through unchanged."""
    try:
        yield
    except BEDROCK_ERRORS + MALFORMED_ANSWER_ERRORS as exc:
        raise map_bedrock_error(exc) from exc

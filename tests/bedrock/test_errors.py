"""app/bedrock/errors.py: a refused proxy AWS identity is named as the proxy's Bedrock access."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from app.bedrock.errors import PROXY_ACCESS_REFUSED, map_bedrock_error
from app.errors import InvalidRequest, PermissionDenied


def client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Converse")


@pytest.mark.parametrize("code", ["AccessDeniedException", "accessDeniedException", "UnrecognizedClientException",
                                  "InvalidSignatureException", "ExpiredTokenException"])
def test_refused_proxy_identity_says_whose_access_it_is(code: str) -> None:
    error = map_bedrock_error(client_error(code, "not authorized to perform: bedrock:InvokeModel"))
    assert type(error) is PermissionDenied and error.status_code == 403
    assert error.message.startswith("Bedrock: not authorized to perform: bedrock:InvokeModel")
    assert PROXY_ACCESS_REFUSED in error.message
    assert "IAM role" in error.message and "Bedrock API key" in error.message
    assert "Anthropic API key is not involved" in error.message


def test_other_errors_keep_bedrocks_message_only() -> None:
    error = map_bedrock_error(client_error("ValidationException", "bad input"))
    assert type(error) is InvalidRequest and error.message == "Bedrock: bad input"

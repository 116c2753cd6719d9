"""Graph's ``POST /me/sendMail``: a JSON ``message`` made into MIME here, or base64 MIME as
``text/plain`` (OAUTH-FACTS §2.3). 202 with no body; the mail is delivered before it answers."""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mailbridge.sandbox import mime
from mailbridge.sandbox.apis import graph_error
from mailbridge.sandbox.delivery import PostOffice
from mailbridge.sandbox.guard import Refused
from mailbridge.sandbox.microsoft import GRAPH
from mailbridge.sandbox.state import AccessToken, ProviderState, User

GRAPH_SEND = {f"{GRAPH}/Mail.Send"}


class GraphSend:
    def __init__(self, state: ProviderState, post: PostOffice) -> None:
        self.state = state
        self.post = post

    async def send_mail(self, request: Request, user: User, token: AccessToken) -> Response:
        body = await request.body()
        content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type == "text/plain":
            raw, keep = _mime(body), True
        else:
            fields = _json(body)
            raw, keep = _built(user, fields), _save_to_sent(fields)
        if not mime.parse(raw).recipients:
            message = "At least one recipient is not valid."
            return graph_error(400, "ErrorInvalidRecipients", message)
        self.post.send(self.state, user, raw, keep_copy=keep)
        return Response(status_code=202)


def _mime(body: bytes) -> bytes:
    try:
        raw = base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not raw:
        message = "Invalid base64 string for MIME content."
        raise Refused(graph_error(400, "ErrorMimeContentInvalidBase64String", message))
    return raw


def _json(body: bytes) -> dict[str, Any]:
    try:
        fields = json.loads(body)
    except ValueError:
        fields = None
    if not isinstance(fields, dict) or not isinstance(fields.get("message"), dict):
        message = (
            "Unable to read JSON request payload. Please ensure Content-Type header is set "
            "and payload is of valid JSON format."
        )
        raise Refused(graph_error(400, "BadRequest", message))
    return fields


def _save_to_sent(fields: dict[str, Any]) -> bool:
    """Default true; Graph's own example sends the string ``"false"``."""
    value = fields.get("saveToSentItems", True)
    return str(value).lower() != "false"


def _built(user: User, fields: dict[str, Any]) -> bytes:
    message: dict[str, Any] = fields["message"]
    found = message.get("body")
    body: dict[str, Any] = found if isinstance(found, dict) else {}
    html = str(body.get("contentType", "Text")).lower() == "html"
    address = user.mail or user.email
    return mime.build(
        email.utils.formataddr((user.upn.partition("@")[0], address)),
        _addresses(message.get("toRecipients")),
        str(message.get("subject") or ""),
        str(body.get("content") or ""),
        cc=_addresses(message.get("ccRecipients")),
        bcc=_addresses(message.get("bccRecipients")),
        html=html,
        headers=_headers(message.get("internetMessageHeaders")),
    )


def _addresses(recipients: Any) -> list[str]:
    """``[{"emailAddress": {"address", "name"?}}]`` as header addresses."""
    found = []
    for recipient in recipients if isinstance(recipients, list) else []:
        address = recipient.get("emailAddress") if isinstance(recipient, dict) else None
        if isinstance(address, dict) and address.get("address"):
            name = str(address.get("name") or "")
            found.append(email.utils.formataddr((name, str(address["address"]))))
    return found


def _headers(headers: Any) -> dict[str, str]:
    """Custom headers; Graph takes only ``x-`` ones."""
    found: dict[str, str] = {}
    for header in headers if isinstance(headers, list) else []:
        name = str(header.get("name", "")) if isinstance(header, dict) else ""
        if not name.lower().startswith("x-"):
            message = "The internet message header name should start with 'x-' or 'X-'."
            raise Refused(graph_error(400, "InvalidInternetMessageHeader", message))
        found[name] = str(header.get("value", ""))
    return found

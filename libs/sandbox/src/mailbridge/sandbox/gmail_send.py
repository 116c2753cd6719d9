"""Gmail's messages.send in its three forms: JSON ``raw``, media upload, multipart upload.

The JSON form refuses a body over ``max_json_send_bytes`` (5 MiB by default) the way Google
does, which is why a worker must switch to ``/upload`` for large messages (OAUTH-FACTS §2.1).
"""

from __future__ import annotations

import base64
import binascii
import json
from email.message import Message
from email.parser import BytesHeaderParser
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mailbridge.sandbox import mime
from mailbridge.sandbox.apis import gmail_bad_request, gmail_error
from mailbridge.sandbox.delivery import PostOffice
from mailbridge.sandbox.guard import Refused
from mailbridge.sandbox.state import AccessToken, ProviderState, User

GMAIL_SEND_SCOPES = {
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.compose",
    "https://www.googleapis.com/auth/gmail.send",
}
MAX_UPLOAD_BYTES = 36 * 1024 * 1024
RAW_REQUIRED = "'raw' RFC822 payload message string or uploading message via /upload/* URL required"


class GmailSend:
    def __init__(self, state: ProviderState, post: PostOffice) -> None:
        self.state = state
        self.post = post

    async def json(self, request: Request, user: User, token: AccessToken) -> Response:
        """``{"raw": base64url, "threadId"?}``."""
        body = await _body(request, self.state.settings.max_json_send_bytes)
        try:
            fields = json.loads(body or b"{}")
        except ValueError:
            return gmail_bad_request("Invalid JSON payload received.", "parseError")
        if not isinstance(fields, dict) or not isinstance(fields.get("raw"), str):
            return gmail_bad_request(RAW_REQUIRED, "badRequest")
        return self._send(user, _base64url(fields["raw"]), _thread_id(fields))

    async def upload(self, request: Request, user: User, token: AccessToken) -> Response:
        """``uploadType=media`` (the body is the message) or ``multipart`` (JSON, message)."""
        body = await _body(request, MAX_UPLOAD_BYTES)
        kind = request.query_params.get("uploadType", "")
        if kind == "media":
            return self._send(user, body, None)
        if kind == "multipart":
            fields, raw = _related(request.headers.get("content-type", ""), body)
            return self._send(user, raw, _thread_id(fields))
        return gmail_bad_request(f"Invalid upload type: {kind!r}", "badRequest")

    def _send(self, user: User, raw: bytes, thread_id: str | None) -> Response:
        if not mime.parse(raw).recipients:
            return gmail_bad_request("Recipient address required")
        if thread_id is not None and not self.state.mailbox(user).has_thread(thread_id):
            return gmail_bad_request("Invalid thread_id value")
        sent = self.post.send(self.state, user, raw, thread_id=thread_id)
        assert sent is not None  # Gmail always keeps the sender's copy
        return JSONResponse({"id": sent.id, "threadId": sent.thread_id, "labelIds": sent.labels})


async def _body(request: Request, limit: int) -> bytes:
    """The request body; over ``limit``, Google's 413 (the message names the limit)."""
    body = await request.body()
    if len(body) > limit:
        message = f"Request payload size exceeds the limit: {limit} bytes."
        raise Refused(gmail_error(413, "badRequest", message, {"status": "INVALID_ARGUMENT"}))
    return body


def _base64url(text: str) -> bytes:
    """Gmail takes base64url with or without padding."""
    cleaned = "".join(text.split())
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), b"-_", validate=True)
    except (binascii.Error, ValueError):
        message = "Invalid value at 'message.raw' (TYPE_BYTES), Base64 decoding failed"
        raise Refused(gmail_bad_request(message)) from None


def _thread_id(fields: Any) -> str | None:
    value = fields.get("threadId") if isinstance(fields, dict) else None
    return value if isinstance(value, str) and value else None


def _related(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes]:
    """The JSON metadata and the message of a ``multipart/related`` upload."""
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/related" or not isinstance(boundary, str):
        raise Refused(gmail_bad_request("Expected multipart/related with a boundary", "badRequest"))
    fields: dict[str, Any] = {}
    raw: bytes | None = None
    for head, content in _parts(body, boundary.encode()):
        if head.get_content_type() == "application/json":
            fields = _json_part(content)
        elif raw is None and head.get_content_maintype() in ("message", "text"):
            raw = _decoded(head, content)
    if raw is None:
        raise Refused(gmail_bad_request(RAW_REQUIRED, "badRequest"))
    return fields, raw


def _parts(body: bytes, boundary: bytes) -> list[tuple[Message, bytes]]:
    """Each part's header and content, byte for byte (the delimiter's CRLF is not content)."""
    found = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n").removeprefix(b"\n")
        chunk = chunk.removesuffix(b"\n").removesuffix(b"\r")
        head, content = mime.split_header(chunk)
        found.append((BytesHeaderParser().parsebytes(head), mime.strip_blank_line(content)))
    return found


def _json_part(content: bytes) -> dict[str, Any]:
    try:
        fields = json.loads(content or b"{}")
    except ValueError:
        raise Refused(gmail_bad_request("Invalid JSON payload received.", "parseError")) from None
    return fields if isinstance(fields, dict) else {}


def _decoded(head: Message, content: bytes) -> bytes:
    if str(head.get("Content-Transfer-Encoding", "")).lower() == "base64":
        try:
            return base64.b64decode(content)
        except (binascii.Error, ValueError):
            raise Refused(gmail_bad_request("Invalid base64 in the message part")) from None
    return content

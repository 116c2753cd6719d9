"""The popup's last page, after the provider's redirect (or a start that failed): a sentence
saying what happened, and a script that tells the UI and closes the window.

The result ``{type: "mailbridge:oauth", flow_id, status, error?}`` is a JSON data block, which
the script posts to the flow's UI origin (exactly that origin, never ``*``, and only one of
``MAILBRIDGE_UI_ORIGINS``) and on ``BroadcastChannel("mailbridge:oauth")``. The page holds no
code, state or token; its only script runs by nonce, and nothing else may load or frame it.
"""

from __future__ import annotations

import html
import json
import secrets

from fastapi.responses import HTMLResponse

from mailbridge.config_api.domain.errors import ServiceUnavailable
from mailbridge.config_api.domain.oauth import is_flow_id
from mailbridge.shared.errors import ErrorInfo, MailbridgeError
from mailbridge.shared.messages import FlowStatus, OAuthFlowCompleted

MESSAGE_TYPE = "mailbridge:oauth"
_FINE = {FlowStatus.COMPLETED.value, FlowStatus.CANCELLED.value}  # answered 200; the rest 400
_HEADINGS = {FlowStatus.COMPLETED.value: "Signed in", FlowStatus.CANCELLED.value: "Cancelled"}

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mailbridge: {heading}</title>
<style nonce="{nonce}">body{{font:16px/1.5 system-ui,sans-serif;margin:3rem auto;max-width:32rem;\
padding:0 1rem}}.hint{{color:#555}}</style>
</head>
<body>
<h1>{heading}</h1>
<p id="message">{sentence}</p>
<p class="hint">{hint}</p>
<script type="application/json" id="result">{result}</script>
<script nonce="{nonce}">
(function () {{
  var result = JSON.parse(document.getElementById("result").textContent);
  var target = {target};
  if (target && window.opener) {{
    try {{ window.opener.postMessage(result, target); }} catch (e) {{}}
  }}
  try {{ new BroadcastChannel("{channel}").postMessage(result); }} catch (e) {{}}
  window.close();
}})();
</script>
</body>
</html>
"""


def finished(completed: OAuthFlowCompleted, allowed_origins: frozenset[str]) -> HTMLResponse:
    """The broker's answer to the redirect: 200 when completed or cancelled, 400 otherwise."""
    origin = completed.ui_origin
    post_to = origin if origin is not None and origin in allowed_origins else None
    status_code = 200 if completed.status in _FINE else 400
    return _page(
        completed.flow_id, completed.status, completed.error, post_to, status_code,
        email=completed.email,
    )  # fmt: skip


def refused(flow_id: str | None, error: MailbridgeError) -> HTMLResponse:
    """A sign-in that could not go on (a start refused, the broker not answering): 503 when a
    service did not answer, 400 otherwise. The UI origin is not known: the opener learns it
    from ``GET /bridge/oauth/flows/{flow_id}``."""
    status_code = 503 if isinstance(error, ServiceUnavailable) else 400
    return _page(flow_id, FlowStatus.FAILED.value, error.info(), None, status_code)


def _page(
    flow_id: str | None,
    status: str,
    error: ErrorInfo | None,
    post_to: str | None,
    status_code: int,
    *,
    email: str | None = None,
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    sentence, hint = _told(status, error, email)
    body = _TEMPLATE.format(
        heading=_text(_HEADINGS.get(status, "Sign-in failed")),
        sentence=_text(sentence),
        hint=_text(hint),
        result=script_json(_result(flow_id, status, error)),
        target=script_json(post_to),
        channel=MESSAGE_TYPE,
        nonce=nonce,
    )
    return HTMLResponse(body, status_code=status_code, headers=_headers(nonce))


def _text(text: str) -> str:
    """Text in an element: the broker's words as it wrote them, markup escaped."""
    return html.escape(text, quote=False)


def _told(status: str, error: ErrorInfo | None, email: str | None) -> tuple[str, str]:
    """What the page says: the broker's own words when it refused."""
    if error is not None:
        return error.message, error.hint
    signed_in = f"Signed in as {email}." if email else "Signed in."
    return signed_in, "mailbridge now tests the mailbox. You can close this window."


def _result(flow_id: str | None, status: str, error: ErrorInfo | None) -> dict[str, object]:
    result: dict[str, object] = {
        "type": MESSAGE_TYPE,
        "flow_id": flow_id if is_flow_id(flow_id) else None,
        "status": status,
    }
    if error is not None:
        result["error"] = error.model_dump(mode="json", include={"code", "message", "hint"})
    return result


def script_json(value: object) -> str:
    """Compact JSON that cannot end a script element or start markup where it is inlined."""
    text = json.dumps(value, separators=(",", ":"))  # ensure_ascii: U+2028/2029 escaped too
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _headers(nonce: str) -> dict[str, str]:
    policy = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }

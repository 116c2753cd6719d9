"""Graph's ``/me/mailFolders/{folder}/messages/delta`` over the inbox's change log.

A link's token is a position in the log, the first call's ``$select`` and ``$filter``, and the
mailbox's sync generation: ``expired_cursor`` bumps the generation, which makes every token
issued before it a 410 ``SyncStateNotFound``. A token that does not decode is a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mailbridge.sandbox import graph_view
from mailbridge.sandbox.apis import graph_error
from mailbridge.sandbox.guard import Refused
from mailbridge.sandbox.mailstore import Mailbox, StoredMessage
from mailbridge.sandbox.microsoft import GRAPH
from mailbridge.sandbox.state import User

DEFAULT_PAGE_SIZE = 10
_MAX_PAGE_SIZE = re.compile(r"odata\.maxpagesize\s*=\s*(\d{1,4})", re.IGNORECASE)


@dataclass(frozen=True)
class Cursor:
    generation: int
    position: int
    end: int | None  # a page link's end of the snapshot; None: the log's end when called
    since: float | None  # the first call's receivedDateTime bound
    strict: bool  # ``gt`` rather than ``ge``
    select: list[str] | None

    def encode(self) -> str:
        text = json.dumps(asdict(self), separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The cursor a link carries; anything this sandbox did not issue is a 400."""
        try:
            fields = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            cursor = cls(**fields)
        except (binascii.Error, ValueError, TypeError, RecursionError):
            raise Refused(invalid()) from None
        if not cursor._well_typed():
            raise Refused(invalid())
        return cursor

    def _well_typed(self) -> bool:
        numbers = [self.generation, self.position, *([] if self.end is None else [self.end])]
        select = self.select
        return (
            all(type(n) is int and n >= 0 for n in numbers)
            and (self.since is None or type(self.since) in (int, float))
            and type(self.strict) is bool
            and (select is None or (type(select) is list and all(type(s) is str for s in select)))
        )

    def matches(self, message: StoredMessage) -> bool:
        if self.since is None:
            return True
        if self.strict:
            return message.received_at > self.since
        return message.received_at >= self.since


def invalid() -> Response:
    return graph_error(400, "SyncStateInvalid", "The sync state is not valid.")


def expired() -> Response:
    message = "The sync state generation is not found; please reset the sync state."
    return graph_error(410, "SyncStateNotFound", message)


class Delta:
    def __init__(self, public_url: str) -> None:
        self.public_url = public_url

    def answer(self, request: Request, user: User, mailbox: Mailbox) -> Response:
        """One page: ``@odata.nextLink`` while the snapshot lasts, then ``@odata.deltaLink``."""
        cursor = self._cursor(request, mailbox)
        size = _page_size(request.headers.get("prefer", ""))
        page, reached = _page(mailbox, cursor, size)
        end = len(mailbox.inbox_log) if cursor.end is None else cursor.end
        link = self._link(request, cursor, reached, end)
        body = {
            "@odata.context": f"{GRAPH}/v1.0/$metadata#Collection(message)",
            "value": [graph_view.resource(user, m, cursor.select) for m in page],
            **link,
        }
        headers = {"Preference-Applied": f"odata.maxpagesize={size}"}
        return JSONResponse(body, headers=headers)

    def _cursor(self, request: Request, mailbox: Mailbox) -> Cursor:
        params = request.query_params
        token = params.get("$skiptoken") or params.get("$deltatoken")
        if token is None:
            return _first_call(params, mailbox)
        cursor = Cursor.decode(token)
        end = len(mailbox.inbox_log) if cursor.end is None else cursor.end
        if cursor.generation != mailbox.sync_generation:
            raise Refused(expired())
        if not cursor.position <= end <= len(mailbox.inbox_log):
            raise Refused(invalid())
        return cursor

    def _link(self, request: Request, cursor: Cursor, reached: int, end: int) -> dict[str, str]:
        base = f"{self.public_url}{request.url.path}"
        if reached < end:
            token = replace(cursor, position=reached, end=end).encode()
            return {"@odata.nextLink": f"{base}?$skiptoken={token}"}
        token = replace(cursor, position=end, end=None).encode()
        return {"@odata.deltaLink": f"{base}?$deltatoken={token}"}


def _first_call(params: Any, mailbox: Mailbox) -> Cursor:
    """A new sync from the start of the log, with the query options to remember."""
    since, strict = graph_view.received_bound(params.get("$filter"))
    select = graph_view.selected(params.get("$select"))
    return Cursor(mailbox.sync_generation, 0, None, since, strict, select)


def _page(mailbox: Mailbox, cursor: Cursor, size: int) -> tuple[list[StoredMessage], int]:
    """Up to ``size`` inbox messages from the cursor on, and the position reached."""
    end = len(mailbox.inbox_log) if cursor.end is None else cursor.end
    found: list[StoredMessage] = []
    position = cursor.position
    while position < end and len(found) < size:
        message = mailbox.messages.get(mailbox.inbox_log[position])
        position += 1
        if message is not None and message.folder == "inbox" and cursor.matches(message):
            found.append(message)
    return found, position


def _page_size(prefer: str) -> int:
    match = _MAX_PAGE_SIZE.search(prefer)
    return max(1, int(match.group(1))) if match else DEFAULT_PAGE_SIZE

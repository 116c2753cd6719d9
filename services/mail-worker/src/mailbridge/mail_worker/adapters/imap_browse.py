"""The IMAP commands of reading any folder on demand (``rpc.mail.messages.*``), on a logged-in
aioimaplib client: list a page newest first, read one message, flag one ``\\Seen``.

A folder is read with EXAMINE (read-only: listing or reading never changes a flag); only marking
seen SELECTs it. Every answer names the folder's UIDVALIDITY, so a reference made under another
numbering is told apart from the message it would now name.
"""

from __future__ import annotations

import re

import aioimaplib

from mailbridge.mail_worker.adapters.imap_commands import mailbox_state, quoted_mailbox
from mailbridge.mail_worker.ports import FetchedItem, FolderPage
from mailbridge.shared.errors import ErrorCode, MailbridgeError, RetryableError

LISTED_HEADERS = "FROM TO CC SUBJECT DATE MESSAGE-ID"
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")


async def examine(client: aioimaplib.IMAP4, folder: str) -> int:
    """Open ``folder`` read-only; its UIDVALIDITY. A folder the server does not have: not_found."""
    uidvalidity = _opened(await client.examine(quoted_mailbox(folder)), folder)
    client.protocol.state = aioimaplib.SELECTED  # aioimaplib moves there on SELECT only
    return uidvalidity


async def select(client: aioimaplib.IMAP4, folder: str) -> int:
    return _opened(await client.select(quoted_mailbox(folder)), folder)


async def page(
    client: aioimaplib.IMAP4, uidvalidity: int, below_uid: int | None, limit: int
) -> FolderPage:
    """The ``limit`` newest messages of the open folder below ``below_uid`` (all, when None)."""
    found = await client.uid_search("ALL", charset=None)
    if found.result != "OK":
        raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "The folder could not be searched.")
    uids = sorted(int(n) for line in found.lines[:1] for n in line.split() if n.isdigit())
    older = [uid for uid in uids if below_uid is None or uid < below_uid]
    chosen = older[-limit:]
    items = await fetch_items(client, chosen, f"BODY.PEEK[HEADER.FIELDS ({LISTED_HEADERS})]")
    newest_first = sorted(items, key=lambda item: item.uid, reverse=True)
    return FolderPage(uidvalidity, newest_first, more=len(older) > len(chosen))


async def fetch_items(
    client: aioimaplib.IMAP4, uids: list[int], part: str = ""
) -> list[FetchedItem]:
    """UID, flags, size (and ``part``, e.g. a body section) of each of ``uids``, in one FETCH."""
    if not uids:
        return []
    items = f"(UID FLAGS RFC822.SIZE {part})".replace(" )", ")")
    answer = await client.uid("fetch", ",".join(map(str, uids)), items)
    if answer.result != "OK":
        raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "The messages could not be fetched.")
    return [item for item in _items(answer.lines) if item.uid in set(uids)]


async def mark_seen(client: aioimaplib.IMAP4, uid: int) -> None:
    answer = await client.uid("store", str(uid), "+FLAGS.SILENT (\\Seen)")
    if answer.result != "OK":
        raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "The message could not be flagged.")


def _opened(answer: aioimaplib.Response, folder: str) -> int:
    if answer.result == "NO":
        raise MailbridgeError(ErrorCode.NOT_FOUND, f"The mailbox has no folder {folder!r}.")
    uidvalidity, _ = mailbox_state(answer)
    return uidvalidity


def _items(lines: list[bytes | bytearray]) -> list[FetchedItem]:
    """aioimaplib's FETCH answer: per message a line ``n FETCH (UID … {size}``, its literal (a
    bytearray), then the rest of the line (``)``, or items the server put after the literal)."""
    items: list[FetchedItem] = []
    for line in lines:
        if isinstance(line, bytearray):
            if items:
                items[-1].literal = bytes(line)
            continue
        if b"FETCH (" in line:
            items.append(FetchedItem())
        if items:
            _read_attributes(items[-1], line)
    return items


def _read_attributes(item: FetchedItem, line: bytes) -> None:
    if uid := _UID.search(line):
        item.uid = int(uid[1])
    if size := _SIZE.search(line):
        item.size = int(size[1])
    if flags := _FLAGS.search(line):
        item.seen = b"\\seen" in flags[1].lower()

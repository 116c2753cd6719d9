"""The IMAP commands of reading INBOX (RFC 3501/9051), on a logged-in aioimaplib client: shared
by the pooled sessions of polls and tests and by the long-lived sessions that watch with IDLE."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import aioimaplib

from mailbridge.mail_worker.ports import FetchedBatch, FirstUid, InboxCounts
from mailbridge.shared.errors import ErrorCode, RetryableError

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_UID_SIZE = re.compile(rb"UID (\d+) RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+) UID (\d+)")
_ASCII_RUNS = re.compile("[ -~]+|[^ -~]+")  # printable ASCII, or not
_STATUS_COUNTS = re.compile(rb"MESSAGES (\d+).*UNSEEN (\d+)|UNSEEN (\d+).*MESSAGES (\d+)")


@dataclass(frozen=True)
class Selected:
    """INBOX as its SELECT described it."""

    uidvalidity: int
    uidnext: int


async def select_inbox(client: aioimaplib.IMAP4) -> Selected:
    selected = await client.select("INBOX")
    announced_since(client)  # SELECT's own EXISTS is the count it reads, not news
    renumbered_since(client)  # and its UIDVALIDITY the numbering it reads
    return Selected(*mailbox_state(selected))


async def new_messages(
    client: aioimaplib.IMAP4,
    first_uid: FirstUid,
    limit: int,
    max_bytes: int,
    selected: Selected | None = None,
) -> FetchedBatch:
    """INBOX's messages from the UID ``first_uid`` picks, at most ``limit``; ``more_waiting`` when
    some were left for later or the server said meanwhile that mail arrived. INBOX is selected
    first unless ``selected`` says it still is (a session in IDLE woken by news)."""
    inbox = selected or await select_inbox(client)
    first = first_uid(inbox.uidvalidity, inbox.uidnext)
    sizes = await sizes_from(client, first)
    uids = sorted(sizes)[:limit]
    messages = [(uid, await fetch_message(client, uid, sizes, max_bytes)) for uid in uids]
    more = announced_since(client) or len(sizes) > limit
    return FetchedBatch(inbox.uidvalidity, first, messages, more)


def announced_since(client: aioimaplib.IMAP4) -> bool:
    """Whether the server said ``* n EXISTS`` (new mail) since the last time this was asked.

    aioimaplib drops untagged lines that come with an answer to SEARCH or FETCH; the protocol
    mailbridge runs (``imap._Protocol``) notes the EXISTS among them first."""
    protocol = client.protocol
    announced = bool(getattr(protocol, "mail_announced", False))
    protocol.mail_announced = False
    return announced


def renumbered_since(client: aioimaplib.IMAP4) -> bool:
    """Whether the server sent a UIDVALIDITY (RFC 3501 §2.3.1.1: the mailbox renumbered while
    selected) since the last time this was asked; noted by ``imap._Protocol`` as EXISTS is."""
    protocol = client.protocol
    renumbered = bool(getattr(protocol, "renumbered", False))
    protocol.renumbered = False
    return renumbered


def mailbox_state(selected: aioimaplib.Response) -> tuple[int, int]:
    text = b" ".join(line for line in selected.lines if isinstance(line, bytes))
    validity, following = _UIDVALIDITY.search(text), _UIDNEXT.search(text)
    if selected.result != "OK" or validity is None:
        raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "INBOX could not be selected.")
    return int(validity.group(1)), int(following.group(1)) if following else 1


async def sizes_from(client: aioimaplib.IMAP4, first: int) -> dict[int, int]:
    """The size of every message from the UID ``first`` on, by UID: one FETCH, no SEARCH."""
    answer = await client.uid("fetch", f"{first}:*", "(RFC822.SIZE)")
    if answer.result != "OK":  # some servers refuse ``n:*`` on an empty mailbox
        return {}
    found = (_UID_SIZE.search(line) for line in answer.lines if isinstance(line, bytes))
    sizes = {int(m[1] or m[4]): int(m[2] or m[3]) for m in found if m}
    # ``n:*`` past the newest UID still names the newest message (RFC 3501 §6.4.8)
    return {uid: size for uid, size in sizes.items() if uid >= first}


async def fetch_message(
    client: aioimaplib.IMAP4, uid: int, sizes: dict[int, int], max_bytes: int
) -> bytes:
    """The whole message, or its header only when it is larger than ``max_bytes``."""
    part = "BODY.PEEK[HEADER]" if sizes.get(uid, 0) > max_bytes else "BODY.PEEK[]"
    answer = await client.uid("fetch", str(uid), f"({part})")
    literal = next((line for line in answer.lines if isinstance(line, bytearray)), None)
    if answer.result != "OK" or literal is None:
        raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, f"UID {uid} could not be fetched.")
    return bytes(literal)


def parse_counts(result: str, lines: list[bytes]) -> InboxCounts:
    for line in lines:
        match = _STATUS_COUNTS.search(line)
        if match:
            messages, unseen = (
                (match.group(1), match.group(2))
                if match.group(1)
                else (
                    match.group(4),
                    match.group(3),
                )
            )
            return InboxCounts(total=int(messages), unread=int(unseen))
    raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, f"STATUS INBOX answered {result}.")


def quoted(text: str) -> str:
    """An IMAP quoted string (RFC 3501): backslash and double quote escaped. The caller keeps
    CR, LF and NUL out (they cannot be quoted, and would end the command)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quoted_mailbox(name: str) -> str:
    """A mailbox name as a command names it: modified UTF-7 (RFC 3501 §5.1.3), then quoted."""
    return quoted(_modified_utf7(name))


def _modified_utf7(name: str) -> str:
    """Printable ASCII stays (``&`` as ``&-``); every run of other characters, control ones
    included, becomes ``&``, its UTF-16 in base64 (``,`` for ``/``, unpadded), ``-``."""
    return "".join(_encoded_run(run) for run in _ASCII_RUNS.findall(name))


def _encoded_run(run: str) -> str:
    if " " <= run[0] <= "~":
        return run.replace("&", "&-")
    utf16 = base64.b64encode(run.encode("utf-16-be")).rstrip(b"=").decode()
    return "&" + utf16.replace("/", ",") + "-"

"""The sandbox provider as a mail server, over real TLS: what a mail-worker sends through the Gmail
API and Microsoft Graph arrives once, threads, is found again and syncs, and each switched-on
failure looks as it would at Google or Microsoft."""

from __future__ import annotations

import base64
import email.policy
import email.utils
import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbridge.devstack.certs import client_ssl_context
from mailbridge.devstack.sandbox import SandboxAdmin, SandboxProvider
from tests.integration import test_sandbox_provider as flows

# The sandbox's own fixtures: a sandbox for this module, its HTTP client and its admin levers.
sandbox, http, admin = flows.sandbox, flows.http, flows.admin

SCOPES = {
    "google": f"openid email {flows.GMAIL}",
    "microsoft": f"{flows.GRAPH_SCOPES} Mail.Send",
}
GMAIL = "/gmail/gmail/v1/users/me"
UPLOAD = "/gmail/upload/gmail/v1/users/me/messages/send"
GRAPH = "/graph/v1.0/me"
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass
class Account:
    provider: str
    email: str
    headers: dict[str, str]


def account(
    http: httpx.Client,
    admin: SandboxAdmin,
    provider: str,
    *,
    scope: str | None = None,
    inbox_total: int = 0,
    unread: int = 0,
) -> Account:
    """A new user with that many messages, signed in to a new app."""
    app = flows.Client(http, admin, provider)
    admin.add_user(provider, app.email, inbox_total=inbox_total, unread=unread)
    return Account(provider, app.email, flows.bearer(app.sign_in(scope or SCOPES[provider])))


def mime(
    sender: Account,
    to: list[Account],
    subject: str,
    *,
    bcc: list[Account] | None = None,
    message_id: bool = True,
    **headers: str,
) -> bytes:
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender.email
    message["To"] = ", ".join(a.email for a in to)
    if bcc:
        message["Bcc"] = ", ".join(a.email for a in bcc)
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = email.utils.make_msgid(domain="client.test")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(f"Body of {subject}.")
    return message.as_bytes()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def gmail_send(http: httpx.Client, sender: Account, raw: bytes, **fields: str) -> dict[str, Any]:
    answer = http.post(
        f"{GMAIL}/messages/send", json={"raw": b64url(raw), **fields}, headers=sender.headers
    )
    assert answer.status_code == 200, answer.text
    sent: dict[str, Any] = answer.json()
    return sent


def send(http: httpx.Client, sender: Account, raw: bytes) -> httpx.Response:
    """``raw`` sent through the sender's API (Gmail as JSON, Graph as base64 MIME)."""
    if sender.provider == "microsoft":
        return graph_send(http, sender, raw)
    payload = {"raw": b64url(raw)}
    return http.post(f"{GMAIL}/messages/send", json=payload, headers=sender.headers)


def graph_send(http: httpx.Client, sender: Account, raw: bytes) -> httpx.Response:
    headers = sender.headers | {"Content-Type": "text/plain"}
    return http.post(f"{GRAPH}/sendMail", content=base64.b64encode(raw), headers=headers)


def message_id_of(raw: bytes) -> str:
    return str(email.message_from_bytes(raw)["Message-ID"])


def inbox(admin: SandboxAdmin, who: Account, folder: str = "inbox") -> list[dict[str, Any]]:
    return admin.mailbox(who.provider, who.email, folder)


def stored(found: dict[str, Any]) -> bytes:
    return base64.b64decode(found["raw_b64"])


def history_id(http: httpx.Client, who: Account) -> str:
    return str(http.get(f"{GMAIL}/profile", headers=who.headers).json()["historyId"])


# --- Gmail ------------------------------------------------------------------------------


def test_a_gmail_send_lands_once_in_each_inbox_and_in_sent_and_in_history(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    alice, bob = account(http, admin, "google"), account(http, admin, "google")
    carol = account(http, admin, "microsoft")
    before = history_id(http, bob)
    raw = mime(alice, [bob], "Lunch?", bcc=[carol])

    sent = gmail_send(http, alice, raw)

    assert sent["labelIds"] == ["SENT"] and len(sent["id"]) == 16 and sent["threadId"] == sent["id"]
    [copy] = inbox(admin, alice, "sent")
    assert (copy["id"], stored(copy)) == (sent["id"], raw)
    [delivered] = inbox(admin, bob)
    [blind] = inbox(admin, carol)
    assert delivered["labels"] == ["UNREAD", "INBOX"] and blind["is_read"] is False
    assert delivered["message_id"] == blind["message_id"] == message_id_of(raw)
    assert b"Bcc:" not in stored(delivered) and stored(delivered) == stored(blind)
    history = http.get(
        f"{GMAIL}/history",
        params={"startHistoryId": before, "historyTypes": "messageAdded", "labelId": "INBOX"},
        headers=bob.headers,
    ).json()
    [record] = history["history"]
    added = record["messagesAdded"][0]["message"]
    assert (added["id"], added["labelIds"]) == (delivered["id"], ["UNREAD", "INBOX"])
    assert int(history["historyId"]) > int(before) and history["historyId"] == history_id(http, bob)


def test_a_gmail_reply_threads_and_search_finds_it(http: httpx.Client, admin: SandboxAdmin) -> None:
    alice, bob = account(http, admin, "google"), account(http, admin, "google")
    started = int(time.time())
    first = mime(alice, [bob], "Plans")
    original = gmail_send(http, alice, first)
    [received] = inbox(admin, bob)
    reply = mime(
        bob, [alice], "Re: Plans", In_Reply_To=message_id_of(first), References=message_id_of(first)
    )

    answered = gmail_send(http, bob, reply, threadId=received["thread_id"])

    assert answered["threadId"] == received["thread_id"]
    [back] = inbox(admin, alice)
    assert back["thread_id"] == original["threadId"] and back["in_reply_to"] == message_id_of(first)
    for q in (
        f"rfc822msgid:{message_id_of(reply)}",
        f"rfc822msgid:{message_id_of(reply).strip('<>')}",
    ):
        found = http.get(f"{GMAIL}/messages", params={"q": q}, headers=bob.headers).json()
        assert found["messages"] == [{"id": answered["id"], "threadId": answered["threadId"]}]
    listed = http.get(
        f"{GMAIL}/messages",
        params={"q": f"after:{started}", "labelIds": ["INBOX", "UNREAD"]},
        headers=bob.headers,
    ).json()
    assert [m["id"] for m in listed["messages"]] == [received["id"]]
    unknown = http.post(
        f"{GMAIL}/messages/send",
        json={"raw": b64url(reply), "threadId": "ffffffffffffffff"},
        headers=bob.headers,
    )
    assert unknown.status_code == 400


def test_a_gmail_reply_without_thread_id_starts_a_thread_at_the_sender_only(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    alice, bob = account(http, admin, "google"), account(http, admin, "google")
    first = mime(alice, [bob], "Question")
    original = gmail_send(http, alice, first)
    reply = mime(bob, [alice], "Re: Question", In_Reply_To=message_id_of(first))

    answered = gmail_send(http, bob, reply)

    assert answered["threadId"] == answered["id"]  # Gmail joins a thread only on threadId
    [back] = inbox(admin, alice)
    assert back["thread_id"] == original["threadId"]  # delivery threads by In-Reply-To


def test_gmail_history_pages_and_resumes_from_a_record(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    bob = account(http, admin, "google")
    start = history_id(http, bob)
    delivered = [admin.deliver("google", bob.email, subject=f"n{n}") for n in range(3)]
    added, records, token, pages = [], [], None, 0
    while True:
        params = {"startHistoryId": start, "maxResults": "2"} | (
            {"pageToken": token} if token else {}
        )
        page = http.get(f"{GMAIL}/history", params=params, headers=bob.headers).json()
        pages += 1
        added += [r["messagesAdded"][0]["message"]["id"] for r in page.get("history", [])]
        records += [r["id"] for r in page.get("history", [])]
        token = page.get("nextPageToken")
        if token is None:
            break
    assert (added, pages) == (delivered, 2)
    resumed = http.get(
        f"{GMAIL}/history", params={"startHistoryId": records[1]}, headers=bob.headers
    ).json()
    assert [r["messages"][0]["id"] for r in resumed["history"]] == delivered[2:]


def test_messages_get_raw_gives_the_bytes_and_lists_page_newest_first(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    bob = account(http, admin, "google", inbox_total=5, unread=1)
    ids = []
    token = None
    while True:
        params = {"maxResults": "2"} | ({"pageToken": token} if token else {})
        page = http.get(f"{GMAIL}/messages", params=params, headers=bob.headers).json()
        ids += [m["id"] for m in page["messages"]]
        token = page.get("nextPageToken")
        if token is None:
            break
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5
    got = http.get(
        f"{GMAIL}/messages/{ids[0]}", params={"format": "raw"}, headers=bob.headers
    ).json()
    [newest] = [m for m in inbox(admin, bob) if m["id"] == ids[0]]
    assert base64.urlsafe_b64decode(got["raw"]) == stored(newest)
    assert got["sizeEstimate"] == len(stored(newest)) and got["internalDate"].isdigit()
    missing = http.get(f"{GMAIL}/messages/0000000000000000", headers=bob.headers)
    assert (
        missing.status_code == 404 and missing.json()["error"]["errors"][0]["reason"] == "notFound"
    )


def test_gmail_upload_sends_and_an_oversize_json_send_is_413(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    alice, bob = account(http, admin, "google"), account(http, admin, "google")
    large = mime(alice, [bob], "Big", X_Padding="x" * 3000)
    admin.set_max_json_send_bytes("google", 2048)
    try:
        refused = http.post(
            f"{GMAIL}/messages/send", json={"raw": b64url(large)}, headers=alice.headers
        )
    finally:
        admin.set_max_json_send_bytes("google", 5 * 1024 * 1024)
    assert refused.status_code == 413
    assert (
        refused.json()["error"]["message"] == "Request payload size exceeds the limit: 2048 bytes."
    )

    media = http.post(
        UPLOAD,
        params={"uploadType": "media"},
        content=large,
        headers=alice.headers | {"Content-Type": "message/rfc822"},
    )
    thread = media.json()["threadId"]
    reply = mime(alice, [bob], "Re: Big", In_Reply_To=message_id_of(large))
    multipart = http.post(
        UPLOAD,
        params={"uploadType": "multipart"},
        content=related({"threadId": thread}, reply),
        headers=alice.headers | {"Content-Type": 'multipart/related; boundary="b0und"'},
    )

    assert media.status_code == multipart.status_code == 200
    assert multipart.json()["threadId"] == thread
    assert [stored(m) for m in inbox(admin, bob)] == [large, reply]


def related(fields: dict[str, str], raw: bytes) -> bytes:
    return (
        b"--b0und\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
        + json.dumps(fields).encode()
        + b"\r\n--b0und\r\nContent-Type: message/rfc822\r\n\r\n"
        + raw
        + b"\r\n--b0und--\r\n"
    )


def test_gmail_history_is_404_after_expired_cursor(http: httpx.Client, admin: SandboxAdmin) -> None:
    bob = account(http, admin, "google", inbox_total=2)
    before = history_id(http, bob)
    admin.expire_cursors("google")

    stale = http.get(f"{GMAIL}/history", params={"startHistoryId": before}, headers=bob.headers)

    assert stale.status_code == 404
    assert stale.json()["error"] == {
        "code": 404,
        "message": "Requested entity was not found.",
        "errors": [
            {"message": "Requested entity was not found.", "domain": "global", "reason": "notFound"}
        ],
        "status": "NOT_FOUND",
    }
    fresh = http.get(
        f"{GMAIL}/history", params={"startHistoryId": history_id(http, bob)}, headers=bob.headers
    )
    assert fresh.status_code == 200 and "history" not in fresh.json()


def test_sending_needs_a_send_scope(http: httpx.Client, admin: SandboxAdmin) -> None:
    reader = account(
        http, admin, "google", scope="openid https://www.googleapis.com/auth/gmail.readonly"
    )
    graph_reader = account(http, admin, "microsoft", scope=flows.GRAPH_SCOPES)
    raw = mime(reader, [graph_reader], "Hi")
    gmail = http.post(f"{GMAIL}/messages/send", json={"raw": b64url(raw)}, headers=reader.headers)
    graph = graph_send(http, graph_reader, raw)
    assert gmail.status_code == 403 and gmail.json()["error"]["status"] == "PERMISSION_DENIED"
    assert graph.status_code == 403 and graph.json()["error"]["code"] == "ErrorAccessDenied"
    assert inbox(admin, graph_reader) == []


# --- Graph ------------------------------------------------------------------------------


def test_graph_send_mail_in_both_forms_delivers_and_keeps_sent_items(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    dave, erin = account(http, admin, "microsoft"), account(http, admin, "microsoft")
    alice = account(http, admin, "google")
    message = {
        "subject": "Report",
        "body": {"contentType": "Text", "content": "Attached in spirit."},
        "toRecipients": [{"emailAddress": {"address": erin.email}}],
        "ccRecipients": [{"emailAddress": {"address": alice.email, "name": "Alice"}}],
        "internetMessageHeaders": [{"name": "X-Mailbridge-Send", "value": "s-1"}],
    }
    as_json = http.post(f"{GRAPH}/sendMail", json={"message": message}, headers=dave.headers)
    no_id = mime(dave, [erin], "Plain MIME", message_id=False)
    as_mime = graph_send(http, dave, no_id)
    unsaved = {"message": message | {"subject": "Unsaved"}, "saveToSentItems": "false"}
    http.post(f"{GRAPH}/sendMail", json=unsaved, headers=dave.headers).raise_for_status()

    assert (as_json.status_code, as_json.content, as_mime.status_code) == (202, b"", 202)
    report, plain, _ = inbox(admin, erin)
    assert [m["subject"] for m in inbox(admin, alice)] == ["Report", "Unsaved"]
    assert b"X-Mailbridge-Send: s-1" in stored(report) and plain["message_id"]
    assert stored(plain).endswith(no_id)  # the assigned Message-ID goes first, nothing else changes
    assert [m["subject"] for m in inbox(admin, dave, "sent")] == ["Report", "Plain MIME"]
    for found in (report, plain):
        search = http.get(
            f"{GRAPH}/mailFolders/SentItems/messages",
            params={
                "$filter": f"internetMessageId eq '{found['message_id']}'",
                "$select": "id,internetMessageId",
            },
            headers=dave.headers,
        ).json()
        [hit] = search["value"]
        assert hit["internetMessageId"] == found["message_id"] and set(hit) == {
            "@odata.etag",
            "id",
            "internetMessageId",
        }
    bad = http.post(
        f"{GRAPH}/sendMail",
        content=b"%%%not base64",
        headers=dave.headers | {"Content-Type": "text/plain"},
    )
    assert (
        bad.status_code == 400
        and bad.json()["error"]["code"] == "ErrorMimeContentInvalidBase64String"
    )


def delta_pages(
    http: httpx.Client, who: Account, url: str, **params: str
) -> tuple[list[dict[str, Any]], str, int]:
    """Every item of a delta round from ``url``, its deltaLink and the number of pages."""
    items: list[dict[str, Any]] = []
    pages = 0
    headers = who.headers | {"Prefer": "odata.maxpagesize=2"}
    answer = http.get(url, params=params or None, headers=headers).json()
    while True:
        pages += 1
        items += answer["value"]
        if "@odata.deltaLink" in answer:
            return items, answer["@odata.deltaLink"], pages
        answer = http.get(answer["@odata.nextLink"], headers=headers).json()


def test_graph_delta_pages_then_its_delta_link_gives_only_new_mail(
    sandbox: SandboxProvider, http: httpx.Client, admin: SandboxAdmin
) -> None:
    erin = account(http, admin, "microsoft", inbox_total=5, unread=2)
    select = "id,subject,internetMessageId,receivedDateTime,isRead"

    items, delta_link, pages = delta_pages(
        http, erin, f"{GRAPH}/mailFolders/inbox/messages/delta", **{"$select": select}
    )

    assert (len(items), pages) == (5, 3) and [i["isRead"] for i in items] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert set(items[0]) == {"@odata.etag", *select.split(",")}
    assert delta_link.startswith(
        f"{sandbox.base_url}/graph/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken="
    )
    assert delta_pages(http, erin, delta_link)[0] == []
    new_id = admin.deliver("microsoft", erin.email, subject="Fresh")
    news, next_link, _ = delta_pages(http, erin, delta_link)
    assert [(i["id"], i["subject"]) for i in news] == [(new_id, "Fresh")] and set(news[0]) == set(
        items[0]
    )
    assert delta_pages(http, erin, next_link)[0] == []
    later = {"$filter": "receivedDateTime ge 2999-01-01T00:00:00Z"}
    assert delta_pages(http, erin, f"{GRAPH}/mailFolders('inbox')/messages/delta", **later)[0] == []


def test_graph_delta_link_is_410_after_expired_cursor(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    erin = account(http, admin, "microsoft", inbox_total=1)
    _, delta_link, _ = delta_pages(http, erin, f"{GRAPH}/mailFolders/Inbox/messages/delta")
    admin.expire_cursors("microsoft")

    gone = http.get(delta_link, headers=erin.headers)

    assert gone.status_code == 410 and gone.json()["error"]["code"] == "SyncStateNotFound"
    assert len(delta_pages(http, erin, f"{GRAPH}/mailFolders/inbox/messages/delta")[0]) == 1


def test_graph_finds_a_message_by_internet_message_id_in_any_folder(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    erin = account(http, admin, "microsoft")
    admin.deliver("microsoft", erin.email, message_id="<it's@outside.test>")
    quoted = "<it''s@outside.test>"

    found = http.get(
        f"{GRAPH}/messages",
        params={"$filter": f"internetMessageId eq '{quoted}'"},
        headers=erin.headers,
    ).json()["value"]
    in_sent = http.get(
        f"{GRAPH}/mailFolders/sentitems/messages",
        params={"$filter": f"internetMessageId eq '{quoted}'"},
        headers=erin.headers,
    ).json()["value"]

    assert [m["internetMessageId"] for m in found] == ["<it's@outside.test>"] and in_sent == []
    assert found[0]["isRead"] is False and found[0]["subject"] == "Hello"


def test_graph_value_is_the_exact_mime(http: httpx.Client, admin: SandboxAdmin) -> None:
    erin = account(http, admin, "microsoft")
    raw = b"From: x@outside.test\r\nTo: e@x\r\nMessage-ID: <m1@outside.test>\r\nSubject: Exact\r\n\r\nbytes \xff\r\n"
    message_id = admin.deliver("microsoft", erin.email, raw=raw)

    value = http.get(f"{GRAPH}/messages/{message_id}/$value", headers=erin.headers)
    missing = http.get(f"{GRAPH}/messages/AAMknothing/$value", headers=erin.headers)

    assert value.status_code == 200 and value.content == raw
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ErrorItemNotFound"


# --- both: counts, failures, traffic -----------------------------------------------------


def test_counts_come_from_the_mailbox_and_stay_exact(
    http: httpx.Client, admin: SandboxAdmin
) -> None:
    bob = account(http, admin, "google", inbox_total=7, unread=2)
    erin = account(http, admin, "microsoft", inbox_total=7, unread=2)
    gmail_send(http, bob, mime(bob, [erin], "One"))
    graph_send(http, erin, mime(erin, [bob], "Two")).raise_for_status()

    label = http.get(f"{GMAIL}/labels/INBOX", headers=bob.headers).json()
    folder = http.get(f"{GRAPH}/mailFolders/Inbox", headers=erin.headers).json()
    sent = http.get(f"{GRAPH}/mailFolders/sentitems", headers=erin.headers).json()
    profile = http.get(f"{GMAIL}/profile", headers=bob.headers).json()

    assert (label["messagesTotal"], label["messagesUnread"]) == (8, 3)
    assert (folder["totalItemCount"], folder["unreadItemCount"]) == (8, 3)
    assert (sent["totalItemCount"], sent["displayName"]) == (1, "Sent Items")
    assert profile["messagesTotal"] == 9  # the inbox and the one sent


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_429_and_503_carry_retry_after(
    http: httpx.Client, admin: SandboxAdmin, provider: str
) -> None:
    who = account(http, admin, provider)
    path = (
        f"{GMAIL}/messages" if provider == "google" else f"{GRAPH}/mailFolders/inbox/messages/delta"
    )
    admin.throttle(provider, "sync", retry_after=7)
    admin.fail(provider, "sync", "503", times=1, retry_after=3)

    throttled = http.get(path, headers=who.headers)
    unavailable = http.get(path, headers=who.headers)

    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "7")
    assert (unavailable.status_code, unavailable.headers["retry-after"]) == (503, "3")
    if provider == "google":
        assert "Retry after 20" in throttled.json()["error"]["message"]
    assert http.get(path, headers=who.headers).status_code == 200


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_drop_after_read_sends_but_the_client_sees_a_transport_error(
    http: httpx.Client, admin: SandboxAdmin, provider: str
) -> None:
    sender, recipient = account(http, admin, provider), account(http, admin, "google")
    raw = mime(sender, [recipient], f"Dropped {secrets.token_hex(2)}")
    admin.drop_after_send(provider)

    with pytest.raises(httpx.TransportError):
        send(http, sender, raw)

    assert [m["message_id"] for m in inbox(admin, recipient)] == [message_id_of(raw)]
    assert len(inbox(admin, sender, "sent")) == 1


def test_requests_and_their_overlap_are_recorded(
    sandbox: SandboxProvider, http: httpx.Client, admin: SandboxAdmin
) -> None:
    bob = account(http, admin, "google", inbox_total=1)
    admin.reset_requests()
    admin.fail("google", "sync", "slow", times=3, delay_seconds=1.0)

    with ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(lambda _: listing(sandbox, bob), range(3)))

    assert statuses == [200, 200, 200]
    assert admin.concurrency("google", bob.email) >= 2
    recorded = [r for r in admin.requests("google") if r["email"] == bob.email]
    assert [(r["method"], r["path"], r["status"]) for r in recorded] == [
        ("GET", f"{GMAIL}/messages", 200)
    ] * 3
    admin.reset_requests()
    assert admin.requests("google") == [] and admin.concurrency("google", bob.email) == 0


def listing(sandbox: SandboxProvider, who: Account) -> int:
    """One messages.list on a client of its own, so the calls really overlap."""
    verify = client_ssl_context(sandbox.ca_file)
    with httpx.Client(base_url=sandbox.base_url, verify=verify, timeout=10) as client:
        return client.get(f"{GMAIL}/messages", headers=who.headers).status_code


# --- parsers: any input is a 4xx, never a 500 --------------------------------------------


@FUZZ
@given(
    field=st.sampled_from(["q", "maxResults", "pageToken", "labelIds"]),
    text=st.one_of(st.text(max_size=60), st.integers(min_value=0).map(lambda n: str(n) * 500)),
)
def test_any_gmail_list_option_is_answered_or_refused(
    http: httpx.Client, admin: SandboxAdmin, field: str, text: str
) -> None:
    who = fuzzed(http, admin, "google")
    answer = http.get(f"{GMAIL}/messages", params={field: text}, headers=who.headers)
    assert answer.status_code == 200 or answer.json()["error"]["code"] == 400  # Google's envelope


@FUZZ
@given(start=st.text(max_size=30), page=st.text(max_size=30))
def test_any_history_id_or_page_token_is_answered_or_refused(
    http: httpx.Client, admin: SandboxAdmin, start: str, page: str
) -> None:
    who = fuzzed(http, admin, "google")
    params = {"startHistoryId": start, "pageToken": page}
    assert http.get(f"{GMAIL}/history", params=params, headers=who.headers).status_code in (
        200,
        400,
        404,
    )


@FUZZ
@given(
    token=st.one_of(st.text(max_size=80), st.binary(max_size=60).map(b64url)),
    name=st.sampled_from(["$deltatoken", "$skiptoken"]),
)
def test_any_delta_token_is_400_or_410(
    http: httpx.Client, admin: SandboxAdmin, token: str, name: str
) -> None:
    who = fuzzed(http, admin, "microsoft")
    answer = http.get(
        f"{GRAPH}/mailFolders/inbox/messages/delta", params={name: token}, headers=who.headers
    )
    assert answer.status_code in (200, 400, 410)


@FUZZ
@given(
    text=st.one_of(st.text(max_size=60), st.integers(min_value=0).map(lambda n: str(n) * 500)),
    field=st.sampled_from(["$filter", "$select", "$top"]),
)
def test_any_graph_query_option_is_answered_or_refused(
    http: httpx.Client, admin: SandboxAdmin, text: str, field: str
) -> None:
    who = fuzzed(http, admin, "microsoft")
    for path in ("mailFolders/inbox/messages/delta", "mailFolders/sentitems/messages"):
        answer = http.get(f"{GRAPH}/{path}", params={field: text}, headers=who.headers)
        assert answer.status_code == 200 or answer.json()["error"]["code"], answer.text
        assert answer.status_code in (200, 400), answer.text


HEADER_LINES = [
    b"To: fuzz@outside.test\r\n",
    b'Cc: "Odd, Name" <odd@outside.test>,\r\n\tsecond@outside.test\r\n',
    b"Bcc: hidden@outside.test\n",
    b"Subject: =?x-unknown?q?abc?= =?utf-8?b?w6k=?=\r\n",
    b"Message-ID: <fuzz@outside.test>\r\n",
    b"In-Reply-To: <nowhere@outside.test>\r\n",
    b"Content-Type: text/plain; charset=x-nonsense\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"\r\n",
    b"\xff\xfe body \x00\r\n",
    b" folded continuation\r\n",
]


@FUZZ
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.lists(st.sampled_from(HEADER_LINES), max_size=8).map(lambda lines: b"".join(lines)),
    )
)
def test_any_bytes_sent_are_delivered_or_refused(
    http: httpx.Client, admin: SandboxAdmin, raw: bytes
) -> None:
    """Whatever the MIME, both sends answer it: sent (200 / 202) or refused (400)."""
    for provider in ("google", "microsoft"):
        answer = send(http, fuzzed(http, admin, provider), raw)
        assert answer.status_code in (200, 202, 400), answer.text


_fuzzed: dict[tuple[str, str], Account] = {}


def fuzzed(http: httpx.Client, admin: SandboxAdmin, provider: str) -> Account:
    """One signed-in account per provider for all the fuzzing, with a message to match."""
    key = (str(http.base_url), provider)
    if key not in _fuzzed:
        _fuzzed[key] = account(http, admin, provider, inbox_total=2, unread=1)
    return _fuzzed[key]

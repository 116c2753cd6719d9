"""No secret ever leaks: every error path of config-api is driven with canary secrets, and an
OAuth sign-in of each provider at the sandbox with the real codes, PKCE verifiers, tokens and flow
cookies it makes; then every place a secret could end up is searched for them — each HTTP response (body and headers), every
service's log at DEBUG, all NATS traffic and every message left in the JetStream streams, and a
``pg_dump`` of the database. Each search must also see this test's data, so it cannot pass blind.

The stack is this module's own: the four services with a captured log sink, on a NATS server and a
database of their own (a shared NATS or outbox table would let another running stack consume our
commands or publish our events, out of sight of the searches).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import nats
import pytest
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from mailbridge.devstack.environment import Infrastructure
from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.postgres import postgres_bin_dir
from mailbridge.devstack.processes import free_port
from mailbridge.devstack.sandbox import SandboxProvider
from mailbridge.devstack.system import RunningSystem, running_system
from mailbridge.shared import subjects
from mailbridge.shared.crypto import generate_key_spec
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import (
    ConnectionTested,
    EmailConfigSaved,
    GrantAuthorized,
    PutOrgConfig,
)
from mailbridge.shared.streams import ALL_STREAMS
from tests.e2e.databases import own_infrastructure
from tests.e2e.mailboxes import imap_config
from tests.e2e.oauth_browser import Browser
from tests.support.waiting import eventually

TEST_TIMEOUT_SECONDS = 8.0
ORG = "org-leak"
TOKEN = new_id().replace("_", "").lower()
CANARY = f"canary-{TOKEN}"  # every secret below starts with it: found even when escaped
SECRETS = {
    "imap password": f"{CANARY}-imap",
    "wrong imap password": f"{CANARY}-wrong",
    "closed-port imap password": f"{CANARY}-closed",
    "microsoft client secret": f"{CANARY}-ms~Q8.secret",
    "google client secret": f"{CANARY}-GOCSPX-google",
    "org microsoft secret": f"{CANARY}-org~ms.secret",
    "org google secret": f"{CANARY}-org-GOCSPX",
    "sandbox google app secret": f"{CANARY}-GOCSPX-sandbox",
    "sandbox microsoft app secret": f"{CANARY}-ms~sandbox.secret",
}
# a quote and a backslash: IMAP LOGIN sends it escaped, which a naive log scrubber misses. A
# canary of its own: the form a naive log scrubber misses (aioimaplib's, once).
QUOTED_TOKEN = new_id().replace("_", "").lower()
QUOTED_PASSWORD = f'canary-{QUOTED_TOKEN}-q"uo\\te'
MESSAGE = {"to": ["Ada <ada@example.com>"], "subject": "Hello", "text": "Hi Ada"}
# The gateway forwards an org app's secret to policy, its owner, in a core NATS request (never a
# stream): the one other place a secret may cross (SPEC §5 allows rpc only).
ORG_APP_WRITES = PutOrgConfig.subscription().removesuffix("*")
# The other core requests whose request or reply carries a secret by design: an app's secret to
# the broker, a code and the browser binding to it, an access token from it (SPEC §5: rpc only).
SECRET_RPC_PREFIXES = (
    "rpc.config.credentials.get.",
    "rpc.config.oauth_app.get.",
    "rpc.oauth.flow.start.",
    "rpc.oauth.flow.complete.",
    "rpc.oauth.access_token.get.",
)


# ---------------------------------------------------------------------------------------------
# what a leak looks like


def _base64_fragments(secret: bytes) -> set[str]:
    """The base64 of ``secret`` wherever it sits in a longer value (e.g. SMTP ``AUTH PLAIN``):
    for each of the three alignments, the characters that depend on the secret's bytes alone."""
    found: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret + b"\0\0").decode()
        first = -(-offset * 8 // 6)  # ceil
        last = (offset + len(secret)) * 8 // 6
        fragment = encoded[first:last]
        found |= {fragment, fragment.replace("+", "-").replace("/", "_")}
    return found


def needles(secret: str) -> set[str]:
    raw = secret.encode()
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
        repr(raw)[2:-1],
        raw.hex(),
        *_base64_fragments(raw),
    }
    return {form for form in forms if len(form) >= 12}


def needles_of(secrets: dict[str, str], token: str) -> dict[str, str]:
    """Every form of every secret, with the secret's name; and the token they share."""
    found = {form: name for name, secret in secrets.items() for form in needles(secret)}
    found.update({form: "the canary prefix" for form in needles(f"canary-{token}")})
    found[token] = "the canary token"
    return found


NEEDLES = needles_of(SECRETS, TOKEN)
QUOTED_NEEDLES = needles_of({"imap password with quotes": QUOTED_PASSWORD}, QUOTED_TOKEN)
EVERY_NEEDLE = NEEDLES | QUOTED_NEEDLES


@dataclass
class Searched:
    """Texts a secret could have leaked into, each with where it came from."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        self.texts.append((where, text))

    def joined(self) -> str:
        return "\n".join(text for _, text in self.texts)

    def leaks(self, needles: dict[str, str] = EVERY_NEEDLE) -> list[str]:
        found = []
        for where, text in self.texts:
            for needle, name in needles.items():
                at = text.find(needle)
                if at >= 0:
                    excerpt = text[max(0, at - 120) : at + len(needle) + 40]
                    found.append(f"{name} in {where}: …{excerpt}…")
        return found


# ---------------------------------------------------------------------------------------------
# the stack


@dataclass(frozen=True)
class LeakStack:
    """The running system, and the key of another org, which must see none of this test's data."""

    system: RunningSystem
    other_org_key: str
    sandbox: SandboxProvider


@pytest.fixture(scope="module")
def leak_stack(
    postgres_dsn: str,
    mail_stack: MailStack,
    sandbox: SandboxProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LeakStack]:
    """The four services at DEBUG, their logs captured for the search."""
    directory = tmp_path_factory.mktemp("leak-nats")
    with own_infrastructure(postgres_dsn, directory, "leakdb") as (nats_url, database_url):
        infra = Infrastructure(
            nats_url,
            database_url,
            generate_key_spec("leak"),
            mail_stack.endpoints.ca_file,
            "DEBUG",
            providers=sandbox.settings(),
        )
        with running_system(
            infra, test_timeout=TEST_TIMEOUT_SECONDS, poll_interval=2.0, sink=io.StringIO()
        ) as system:
            other_org_key = system.new_api_key("--org", "org-other")
            yield LeakStack(system, other_org_key, sandbox)


@dataclass
class Wiretap:
    """Every core NATS message (JetStream publishes included) while the test drives the API."""

    messages: list[Msg] = field(default_factory=list)

    async def on_message(self, msg: Msg) -> None:
        self.messages.append(msg)

    def org_app_writes(self) -> int:
        return sum(1 for m in self.messages if m.subject.startswith(ORG_APP_WRITES))

    def secret_replies(self) -> set[str]:
        """Reply inboxes of the requests whose reply carries a secret by design (SPEC §5)."""
        return {m.reply for m in self.messages if m.subject.startswith(SECRET_RPC_PREFIXES)}

    def credentials_replies(self) -> set[str]:
        return {
            m.reply for m in self.messages if m.subject.startswith("rpc.config.credentials.get.")
        }


@dataclass
class Api:
    """An HTTP client that keeps every response it saw, headers and body, for the search."""

    client: httpx.AsyncClient
    seen: Searched

    async def call(self, method: str, path: str, *, key: str | None, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        answer = await self.client.request(method, path, headers=headers, **kw)
        self.seen.add(f"HTTP {method} {path} → {answer.status_code}", _as_text(answer))
        return answer


def _as_text(answer: httpx.Response) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in answer.headers.multi_items())
    return f"{answer.status_code}\n{headers}\n\n{answer.text}"


# ---------------------------------------------------------------------------------------------
# the test


@dataclass
class Evidence:
    """Everything the services showed or kept while every path was driven."""

    agents: dict[str, str]
    responses: Searched
    logs: Searched
    traffic: Searched
    streams: Searched
    dump: Searched
    credentials_replies: int
    org_app_writes: int
    oauth_secrets: dict[str, str]  # needle → name: what the OAuth sign-ins really used

    @property
    def needles(self) -> dict[str, str]:
        return EVERY_NEEDLE | self.oauth_secrets


@pytest.fixture(scope="module")
async def evidence(leak_stack: LeakStack, mail_stack: MailStack) -> Evidence:
    tap = Wiretap()
    listener = await nats.connect(leak_stack.system.nats_url)
    await listener.subscribe(">", cb=tap.on_message)
    await listener.flush()
    responses = Searched()
    try:
        async with httpx.AsyncClient(base_url=leak_stack.system.base_url, timeout=60) as client:
            api = Api(client, responses)
            agents = await _drive_every_path(api, leak_stack, mail_stack)
            oauth_secrets = await _oauth_sign_ins(api, leak_stack, agents)
    finally:
        await listener.close()
    system = leak_stack.system
    await asyncio.to_thread(system.supervisor.stop)  # every log line out, shutdown included
    logs = Searched()
    logs.add("the services' logs", await _settled_logs(system))
    dump = Searched()
    dump.add("pg_dump", _pg_dump(system.database_url))
    streams = await _stream_messages(system.nats_url)
    replies = len(tap.credentials_replies())
    traffic = _core_traffic(tap)
    writes = tap.org_app_writes()
    return Evidence(agents, responses, logs, traffic, streams, dump, replies, writes, oauth_secrets)


def _no_leaks(found: list[str]) -> None:
    assert found == [], "secrets leaked:\n" + "\n\n".join(found)


def test_no_http_response_shows_a_secret(evidence: Evidence) -> None:
    assert len(evidence.responses.texts) > 50, "the responses were not recorded"
    assert any(where.startswith("SSE") for where, _ in evidence.responses.texts)
    _no_leaks(evidence.responses.leaks(evidence.needles))


def test_no_log_line_holds_a_secret(evidence: Evidence) -> None:
    log_text = evidence.logs.joined()
    for service in ("config-api", "policy", "oauth-broker", "mail-worker"):
        assert re.search(rf"^{service} +\| ", log_text, re.M), f"no log line from {service}"
    assert '"level": "debug"' in log_text, "the services did not log at DEBUG"
    assert evidence.agents["imap"] in log_text, "the logs never mention the agent"
    _no_leaks(evidence.logs.leaks(NEEDLES | evidence.oauth_secrets))


def test_no_log_line_holds_a_password_with_quotes(evidence: Evidence) -> None:
    assert evidence.agents["quoted"] in evidence.logs.joined()
    _no_leaks(evidence.logs.leaks(QUOTED_NEEDLES))


def test_secrets_cross_nats_only_in_credentials_replies(evidence: Evidence) -> None:
    subjects_seen = [where for where, _ in evidence.traffic.texts]
    assert any(evidence.agents["imap"] in where for where in subjects_seen), "the tap saw nothing"
    assert any(where.startswith("NATS cmd.mail.") for where in subjects_seen)
    assert evidence.credentials_replies > 0, "no credentials request was seen"
    assert evidence.org_app_writes > 0, "no org app was written"
    _no_leaks(evidence.traffic.leaks(evidence.needles))


def test_no_stream_message_holds_a_secret(evidence: Evidence) -> None:
    stream_text = evidence.streams.joined()
    saved = subjects.render(EmailConfigSaved.subject_template, evidence.agents["imap"])
    tested = subjects.render(ConnectionTested.subject_template, evidence.agents["wrong"])
    authorized = subjects.render(GrantAuthorized.subject_template, evidence.agents["oauth google"])
    assert saved in stream_text, saved
    assert tested in stream_text, tested
    assert authorized in stream_text, authorized
    _no_leaks(evidence.streams.leaks(evidence.needles))


def test_the_database_holds_no_secret_in_the_clear(evidence: Evidence) -> None:
    dump = evidence.dump.joined()
    assert evidence.agents["google"] in dump and evidence.agents["quoted"] in dump
    assert re.search(r"\tleak\.[A-Za-z0-9_-]{40,}", dump), "no sealed secret in the dump"
    _no_leaks(evidence.dump.leaks(evidence.needles))


async def _drive_every_path(api: Api, stack: LeakStack, mail_stack: MailStack) -> dict[str, str]:
    key = stack.system.operator_key
    mail = mail_stack.endpoints
    agents = {name: new_id("agent") for name in ("imap", "quoted", "wrong", "closed")}
    agents |= {"microsoft": new_id("agent"), "google": new_id("agent"), "inherits": new_id("agent")}
    for agent_id in agents.values():
        answer = await api.call("PUT", f"/bridge/agents/{agent_id}", key=key, json={"org_id": ORG})
        assert answer.status_code == 200, answer.text

    # a real mailbox whose app password is the canary: the happy path runs too
    address = await _mailbox(mail_stack, agents["imap"], SECRETS["imap password"])
    config = imap_config(mail, address, SECRETS["imap password"])
    path = f"/bridge/agents/{agents['imap']}/email-config"
    saved = await api.call("PUT", path, key=key, json=config)
    assert saved.status_code == 200, saved.text
    assert saved.json()["has_password"] is True
    tested = await api.call("POST", f"{path}/test", key=key)
    assert tested.json()["ok"] is True, tested.text

    quoted = await _mailbox(mail_stack, agents["quoted"], QUOTED_PASSWORD)
    quoted_path = f"/bridge/agents/{agents['quoted']}/email-config"
    quoted_config = imap_config(mail, quoted, QUOTED_PASSWORD)
    assert (await api.call("PUT", quoted_path, key=key, json=quoted_config)).status_code == 200
    quoted_test = await api.call("POST", f"{quoted_path}/test", key=key)
    assert quoted_test.json()["ok"] is True, quoted_test.text

    await _invalid_saves(api, path, config, key)
    await _stale_versions(api, path, config, key)
    await _wrong_keys(api, path, config, stack)
    await _wrong_password(api, mail_stack, agents["wrong"], key)
    await _closed_port(api, mail_stack, agents["closed"], key)
    await _sends(api, agents["imap"], key, stack)
    await _live_feed(api, path, key)
    await _without_a_worker(api, path, key, stack)
    await _oauth_apps(api, agents["microsoft"], agents["google"], key)
    await _org_apps(api, agents["inherits"], stack)

    deleted = await api.call("DELETE", path, key=key)
    assert deleted.status_code == 200, deleted.text
    shown = (await api.call("GET", path, key=key)).json()
    assert (shown["status"], shown["has_password"]) == ("not_connected", False)
    assert (await api.call("POST", f"{path}/test", key=key)).status_code == 409
    sent = await api.call(
        "POST", f"/bridge/agents/{agents['imap']}/messages", key=key, json=MESSAGE
    )
    assert sent.status_code == 409
    return agents


async def _mailbox(mail_stack: MailStack, agent_id: str, password: str) -> str:
    local_part = agent_id.replace("_", "-")
    return await asyncio.to_thread(mail_stack.create_mailbox, local_part, password)


async def _invalid_saves(api: Api, path: str, config: dict[str, Any], key: str) -> None:
    """422s for bodies that carry the password; the canary is also the value of bad fields."""
    secret = config["password"]
    imap = config["imap"]
    bodies: list[dict[str, Any]] = [
        {**config, "imap": {**imap, "port": 70000}},
        {**config, "imap": {**imap, "port": secret}},
        {**config, "imap": {**imap, "security": "tls"}},
        {**config, "smtp": {**config["smtp"], "security": secret}},
        {**config, "imap": {**imap, "host": secret + "!"}},
        {**config, "email": "not-an-address"},
        {**config, "email": secret},
        {**config, "preset": "no-such-preset"},
        {**config, "extra": "field"},
        {**config, "extra": secret},
        {**config, "password": {"value": secret}},
        {**config, "password": [secret]},
        {**config, "password": secret * 40},  # too long
        {**config, "username": secret * 40},
        {**config, "provider": "pop3"},
        {name: value for name, value in config.items() if name != "email"},
    ]
    for body in bodies:
        answer = await api.call("PUT", path, key=key, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["code"] == "invalid_input"
    broken = json.dumps(config)[:-10].encode()  # not JSON at all
    answer = await api.call(
        "PUT", path, key=key, content=broken, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    form = await api.call("PUT", path, key=key, data={"password": secret})
    assert form.status_code == 422, form.text


async def _stale_versions(api: Api, path: str, config: dict[str, Any], key: str) -> None:
    etag = (await api.call("GET", path, key=key)).headers["etag"]
    assert (await api.call("PUT", path, key=key, json=config)).status_code == 200
    for method, body in (("PUT", config), ("DELETE", None)):
        answer = await api.call(method, path, key=key, json=body, headers={"If-Match": etag})
        assert (answer.status_code, answer.json()["code"]) == (412, "precondition_failed")
    bad_etag = await api.call("PUT", path, key=key, json=config, headers={"If-Match": "nonsense"})
    assert bad_etag.status_code in {412, 422}, bad_etag.text


async def _wrong_keys(api: Api, path: str, config: dict[str, Any], stack: LeakStack) -> None:
    other = stack.other_org_key
    for method, suffix, body in (
        ("GET", "", None),
        ("PUT", "", config),
        ("DELETE", "", None),
        ("POST", "/test", None),
        ("GET", "/events", None),
    ):
        answer = await api.call(method, path + suffix, key=other, json=body)
        assert answer.status_code == 404, (method, suffix, answer.text)
    messages = path.replace("/email-config", "/messages")
    assert (await api.call("POST", messages, key=other, json=MESSAGE)).status_code == 404
    for key in (None, "mbk_x_y", config["password"], f"mbk_{config['password']}_x"):
        for method, body in (("GET", None), ("PUT", config), ("DELETE", None)):
            answer = await api.call(method, path, key=key, json=body)
            assert answer.status_code == 401, (key, method, answer.text)
        answer = await api.call("POST", f"{path}/test", key=key)
        assert answer.status_code == 401


async def _wrong_password(api: Api, mail_stack: MailStack, agent_id: str, key: str) -> None:
    address = await _mailbox(mail_stack, agent_id, "right-" + new_id())
    path = f"/bridge/agents/{agent_id}/email-config"
    config = imap_config(mail_stack.endpoints, address, SECRETS["wrong imap password"])
    assert (await api.call("PUT", path, key=key, json=config)).status_code == 200
    result = (await api.call("POST", f"{path}/test", key=key)).json()
    assert (result["ok"], result["error"]["code"]) == (False, "auth_failed"), result
    shown = (await api.call("GET", path, key=key)).json()
    assert (shown["status"], shown["last_error"]["code"]) == ("error", "auth_failed")


async def _closed_port(api: Api, mail_stack: MailStack, agent_id: str, key: str) -> None:
    mail = mail_stack.endpoints
    address = await _mailbox(mail_stack, agent_id, SECRETS["closed-port imap password"])
    config = imap_config(mail, address, SECRETS["closed-port imap password"])
    closed = free_port()
    config["imap"] = {"host": mail.host, "port": closed, "security": "ssl"}
    config["smtp"] = {"host": mail.host, "port": closed, "security": "starttls"}
    path = f"/bridge/agents/{agent_id}/email-config"
    assert (await api.call("PUT", path, key=key, json=config)).status_code == 200
    result = (await api.call("POST", f"{path}/test", key=key)).json()
    assert (result["ok"], result["error"]["code"]) == (False, "connection_refused"), result


async def _sends(api: Api, agent_id: str, key: str, stack: LeakStack) -> None:
    path = f"/bridge/agents/{agent_id}/messages"
    secret = SECRETS["imap password"]
    bad_bodies: list[Any] = [
        {**MESSAGE, "subject": "Hi\r\nBcc: victim@example.com"},
        {**MESSAGE, "to": ["ada@example.com\nBcc: victim@example.com"]},
        {**MESSAGE, "to": ["not an address"]},
        {**MESSAGE, "to": []},
        {**MESSAGE, "in_reply_to": "<a@b>\x00"},
        {**MESSAGE, "password": secret},
        {"text": secret},
        [MESSAGE],
    ]
    for body in bad_bodies:
        answer = await api.call("POST", path, key=key, json=body)
        assert answer.status_code == 422, (body, answer.text)
    idempotency = {"Idempotency-Key": new_id()}
    first = await api.call("POST", path, key=key, json=MESSAGE, headers=idempotency)
    assert first.status_code == 202, first.text
    reused = await api.call(
        "POST", path, key=key, json={**MESSAGE, "subject": "Other"}, headers=idempotency
    )
    assert reused.status_code == 422
    too_long = await api.call(
        "POST", path, key=key, json=MESSAGE, headers={"Idempotency-Key": secret * 10}
    )
    assert too_long.status_code == 422
    command_id = first.json()["command_id"]
    assert (await api.call("GET", f"{path}/{command_id}", key=key)).status_code == 200
    assert (await api.call("GET", f"{path}/no-such-command", key=key)).status_code == 404
    assert (
        await api.call("GET", f"{path}/{command_id}", key=stack.other_org_key)
    ).status_code == 404


async def _live_feed(api: Api, path: str, key: str) -> None:
    """The SSE snapshot, then the live status and test result of a test run meanwhile."""
    headers = {"Authorization": f"Bearer {key}"}
    lines: list[str] = []
    async with api.client.stream("GET", f"{path}/events", headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = response.aiter_lines()
        async with asyncio.timeout(30):
            await _read_until(events, lines, "event: snapshot")
            test = asyncio.create_task(api.call("POST", f"{path}/test", key=key))
            await _read_until(events, lines, "event: test_result")
            assert (await test).json()["ok"] is True
        api.seen.add(f"SSE GET {path}/events", _as_headers(response) + "\n".join(lines))
    snapshot = next(line for line in lines if line.startswith("data: "))
    assert json.loads(snapshot.removeprefix("data: "))["has_password"] is True


async def _read_until(events: AsyncIterator[str], lines: list[str], wanted: str) -> None:
    async for line in events:
        lines.append(line)
        if line == wanted:
            lines.append(await anext(events))  # its id or data…
            lines.append(await anext(events))
            return


def _as_headers(response: httpx.Response) -> str:
    return "\n".join(f"{name}: {value}" for name, value in response.headers.multi_items()) + "\n"


async def _without_a_worker(api: Api, path: str, key: str, stack: LeakStack) -> None:
    supervisor = stack.system.supervisor
    await asyncio.to_thread(supervisor.stop_service, "mail-worker")
    try:
        answer = await api.call("POST", f"{path}/test", key=key)
    finally:
        await asyncio.to_thread(supervisor.start_service, "mail-worker")
        await asyncio.to_thread(supervisor.wait_ready, 60)
    assert (answer.status_code, answer.json()["code"]) == (504, "worker_unavailable"), answer.text


async def _oauth_apps(api: Api, microsoft_agent: str, google_agent: str, key: str) -> None:
    microsoft = {
        "provider": "microsoft",
        "email": "ops@contoso.example",
        "client_id": "00000000-0000-0000-0000-000000000001",
        "client_secret": SECRETS["microsoft client secret"],
        "tenant_id": "contoso.example",
    }
    google = {
        "provider": "google",
        "email": "ops@example.com",
        "client_id": "1234-abc.apps.googleusercontent.com",
        "client_secret": SECRETS["google client secret"],
    }
    for agent_id, body in ((microsoft_agent, microsoft), (google_agent, google)):
        path = f"/bridge/agents/{agent_id}/email-config"
        saved = await api.call("PUT", path, key=key, json=body)
        assert saved.status_code == 200, saved.text
        shown = (await api.call("GET", path, key=key)).json()
        assert shown["has_client_secret"] is True, shown
        for bad in (
            {**body, "extra": body["client_secret"]},
            {**body, "client_id": body["client_secret"] * 20},
            {**body, "client_secret": body["client_secret"] * 40},
            {**body, "email": body["client_secret"]},
            {**body, "password": body["client_secret"]},
        ):
            answer = await api.call("PUT", path, key=key, json=bad)
            assert answer.status_code == 422, (bad, answer.text)
        test = await api.call("POST", f"{path}/test", key=key)  # not authorized: no grant yet
        assert test.status_code in {200, 409, 504}, test.text
    deleted = await api.call("DELETE", f"/bridge/agents/{microsoft_agent}/email-config", key=key)
    assert deleted.status_code == 200, deleted.text
    shown = await api.call("GET", f"/bridge/agents/{microsoft_agent}/email-config", key=key)
    assert shown.json()["has_client_secret"] is False


async def _org_apps(api: Api, inheriting_agent: str, stack: LeakStack) -> None:
    """The org's shared apps: secrets written once, through the gateway to policy, never shown."""
    key, path = stack.system.operator_key, f"/bridge/orgs/{ORG}/email-config"
    microsoft = {
        "client_id": "00000000-0000-0000-0000-0000000000aa",
        "client_secret": SECRETS["org microsoft secret"],
        "tenant_id": "contoso.example",
    }
    google = {
        "client_id": "org.apps.googleusercontent.com",
        "client_secret": SECRETS["org google secret"],
    }
    saved = await api.call("PUT", path, key=key, json={"microsoft": microsoft, "google": google})
    assert saved.status_code == 200, saved.text
    assert saved.json()["microsoft"]["has_client_secret"] is True
    secret = microsoft["client_secret"]
    for bad in (
        {"microsoft": {**microsoft, "tenant_id": secret + "!"}},
        {"microsoft": {**microsoft, "extra": secret}},
        {"microsoft": {**microsoft, "client_secret": [secret]}},
        {"google": {**google, "client_id": secret * 20}},
        {"google": google, "other": secret},
    ):
        answer = await api.call("PUT", path, key=key, json=bad)
        assert answer.status_code == 422, (bad, answer.text)
    kept = {"microsoft": {**microsoft, "client_secret": None}, "google": google}
    assert (await api.call("PUT", path, key=key, json=kept)).status_code == 200
    for method, body in (("GET", None), ("PUT", kept), ("DELETE", None)):
        answer = await api.call(method, path, key=stack.other_org_key, json=body)
        assert answer.status_code == 404, (method, answer.text)
    agent_path = f"/bridge/agents/{inheriting_agent}/email-config"
    inherits = {"provider": "microsoft", "email": "ops@contoso.example"}
    assert (await api.call("PUT", agent_path, key=key, json=inherits)).status_code == 200
    banner = (await api.call("GET", agent_path, key=key)).json()["org_oauth_app"]
    assert (banner["inherited"], banner["client_id"]) == (True, microsoft["client_id"]), banner


async def _oauth_sign_ins(api: Api, stack: LeakStack, agents: dict[str, str]) -> dict[str, str]:
    """A sign-in of each provider at the sandbox, with access tokens so short-lived that every
    test refreshes, then a disconnect; answers the needles of every code, verifier, token and
    flow cookie it used."""
    key, sandbox = stack.system.operator_key, stack.sandbox
    used: dict[str, str] = {}
    callback = f"{stack.system.base_url}/api/engine/oauth/callback"
    for provider in ("google", "microsoft"):
        agent_id = agents[f"oauth {provider}"] = new_id("agent")
        secret = SECRETS[f"sandbox {provider} app secret"]
        client_id, email = new_id("client"), f"{agent_id.lower().replace('_', '-')}@oauth.example"
        sandbox.admin.register_client(provider, client_id, secret, [callback])
        sandbox.admin.add_user(provider, email, inbox_total=3, unread=1)
        sandbox.admin.set_token_lifetime(provider, 60)  # under the broker's 5 minutes: refreshes
        path = f"/bridge/agents/{agent_id}/email-config"
        assert (
            await api.call("PUT", path[: -len("/email-config")], key=key, json={"org_id": ORG})
        ).is_success
        config = {"provider": provider, "client_id": client_id, "client_secret": secret}
        assert (await api.call("PUT", path, key=key, json=config)).status_code == 200
        begun = await api.call("POST", f"{path}/authorize", key=key, json={})
        assert begun.status_code == 200, begun.text
        with Browser(sandbox.ca_file) as browser:
            page = browser.open(begun.json()["authorization_url"])
            landed = browser.consent(page, email=email)
            api.seen.add(f"HTTP GET the callback page of {provider}", _as_text(landed))
            cookies = browser.cookies_set
        assert landed.status_code == 200, landed.text
        await _connected(api, path, key)  # the grant's address reached config-api
        for _ in range(2):  # each test asks for a token, and each token request refreshes
            tested = await api.call("POST", f"{path}/test", key=key)
            assert tested.json()["ok"] is True, tested.text
        await _api_mail(api, stack, provider, agent_id, email)
        assert (await api.call("DELETE", path, key=key)).status_code == 200
        used |= {f"{provider} flow cookie {n}": value for n, value in enumerate(cookies) if value}
        found = sandbox.admin.secrets(provider)
        used |= {f"{provider} {kind} {n}": value for n, (kind, value) in enumerate(found)}
        sandbox.admin.set_token_lifetime(provider, 3599)
    assert any("refresh token" in name for name in used) and any("cookie" in name for name in used)
    return {form: name for name, value in used.items() for form in needles(value)}


async def _api_mail(api: Api, stack: LeakStack, provider: str, agent_id: str, email: str) -> None:
    """Mail through the provider's API with those tokens: a send whose first token the provider
    refuses (one forced refresh, the refused token named to the broker), then a message polled in
    and read."""
    key, sandbox = stack.system.operator_key, stack.sandbox
    friend = f"friend-{agent_id.lower().replace('_', '-')}@oauth.example"
    sandbox.admin.add_user(provider, friend)
    sandbox.admin.fail(provider, "send", "invalid_grant", times=1)  # any other kind: a 401
    path = f"/bridge/agents/{agent_id}/messages"
    queued = await api.call("POST", path, key=key, json={**MESSAGE, "to": [friend]})
    assert queued.status_code == 202, queued.text
    command = f"{path}/{queued.json()['command_id']}"

    async def sent() -> bool:
        return bool((await api.call("GET", command, key=key)).json()["status"] == "sent")

    await eventually(sent, what=f"{provider} API send sent", timeout=60)
    message = sandbox.admin.deliver(provider, email, sender=friend, subject="polled in")

    def read() -> bool:
        return any(message in r["path"] for r in sandbox.admin.requests(provider))

    await eventually(
        lambda: asyncio.to_thread(read), what=f"{provider} message read by the worker", timeout=60
    )


async def _connected(api: Api, path: str, key: str) -> None:
    async def probe() -> bool:
        return bool((await api.call("GET", path, key=key)).json()["status"] == "connected")

    await eventually(probe, what=f"{path} connected", timeout=60)


# ---------------------------------------------------------------------------------------------
# the places searched


async def _settled_logs(system: RunningSystem) -> str:
    """The log once the forwarding threads have written the last lines of the stopped services."""
    previous = -1
    while (size := len(system.log_text())) != previous:
        previous = size
        await asyncio.sleep(0.5)
    return system.log_text()


def _core_traffic(tap: Wiretap) -> Searched:
    allowed = tap.secret_replies()
    searched = Searched()
    for m in tap.messages:
        if m.subject in allowed or m.subject.startswith((ORG_APP_WRITES, *SECRET_RPC_PREFIXES)):
            continue
        searched.add(f"NATS {m.subject}", _message_text(m.subject, m.headers, m.data))
    return searched


async def _stream_messages(nats_url: str) -> Searched:
    searched = Searched()
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        for definition in ALL_STREAMS:
            state = (await js.stream_info(definition.name)).state
            if state.messages == 0:
                continue
            for seq in range(state.first_seq, state.last_seq + 1):
                try:
                    m = await js.get_msg(definition.name, seq)
                except NotFoundError:  # acknowledged out of a work queue
                    continue
                where = f"stream {definition.name} #{seq} {m.subject}"
                searched.add(where, _message_text(m.subject or "", m.headers, m.data or b""))
    finally:
        await client.close()
    return searched


def _message_text(subject: str, headers: dict[str, str] | None, data: bytes) -> str:
    head = "\n".join(f"{k}: {v}" for k, v in (headers or {}).items())
    return f"{subject}\n{head}\n\n{data.decode(errors='replace')}"


def _pg_dump(database_url: str) -> bytes:
    return subprocess.run(
        [str(postgres_bin_dir() / "pg_dump"), "--dbname", database_url],
        capture_output=True, check=True,
    ).stdout  # fmt: skip


def test_the_needles_find_a_secret_in_every_form() -> None:
    """The search itself: raw, escaped, URL-encoded and base64 at any alignment (AUTH PLAIN)."""
    secret = QUOTED_PASSWORD
    plain = base64.b64encode(f"\0user@example.com\0{secret}".encode()).decode()
    imap_login = repr(
        f'A001 LOGIN user "{secret.replace(chr(92), 2 * chr(92)).replace(chr(34), chr(92) + chr(34))}"'.encode()
    )
    for leaked in (
        json.dumps({"msg": f"password={secret}"}),
        quote_plus(f"password={secret}"),
        plain,
        base64.urlsafe_b64encode(b"x" + secret.encode()).decode(),
        json.dumps({"msg": imap_login}),
        secret.encode().hex(),
    ):
        searched = Searched()
        searched.add("a sample", leaked)
        assert searched.leaks(), leaked
    clean = Searched()
    clean.add("a sample", json.dumps({"agent": "agent_x", "sealed": "leak.AAAA" + "B" * 60}))
    assert clean.leaks() == []

"""`make run` as a newcomer uses it: everything up and ready, the demo agent connects, and Ctrl-C
leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext

from mailbridge.devstack.oauth_demo import DEMOS
from mailbridge.devstack.processes import free_port
from tests.e2e.email_tab import EmailTab
from tests.e2e.oauth_browser import Browser

READY_WITHIN_SECONDS = 60


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def processes_mentioning(marker: str) -> set[int]:
    """Pids whose command line or environment mentions ``marker`` (our data dir or NATS port)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in text:
            found.add(int(entry.name))
    return found


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client, float]]:
    """``make run`` in ``tmp_path/data``: the process, an API client with its key, and the
    seconds until it was ready."""
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "mailbridge.devstack", "run", "--data-dir", str(tmp_path / "data"),
         "--port", str(port)],
        stdout=(tmp_path / "make-run.out").open("wb"), stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        key = _wait_for_file(process, tmp_path / "data" / "api-key")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as api:
            yield process, api, _wait_for_demo(process, api, started)
    finally:
        stop_gracefully(process)


def stop_gracefully(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a person would; SIGKILL only if that hangs (it would leak the servers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _wait_for_file(process: subprocess.Popen[bytes], path: Path) -> str:
    deadline = time.monotonic() + READY_WITHIN_SECONDS * 2
    while not path.exists():
        assert process.poll() is None, "make run exited early"
        assert time.monotonic() < deadline, "make run never created its API key"
        time.sleep(0.1)
    return path.read_text().strip()


def _wait_for_demo(process: subprocess.Popen[bytes], api: httpx.Client, started: float) -> float:
    """Seconds until /readyz answers 200 and the demo agent is configured."""
    while time.monotonic() - started < READY_WITHIN_SECONDS * 2:
        assert process.poll() is None, "make run exited early"
        ready = api.get("/readyz").status_code == 200
        if ready and api.get("/bridge/agents/demo-agent/email-config").status_code == 200:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError("make run never became ready")


def test_make_run_is_ready_and_the_demo_agent_connects(
    make_run: tuple[subprocess.Popen[bytes], httpx.Client, float],
) -> None:
    _, api, seconds = make_run
    assert seconds < READY_WITHIN_SECONDS

    result = api.post("/bridge/agents/demo-agent/email-config/test").json()

    assert result.get("ok") is True, result  # a problem answer has no "ok": show it
    assert (result["inbox_total"], result["unread"]) == (2, 1)
    assert api.get("/bridge/agents/demo-agent/email-config").json()["status"] == "connected"


def test_make_run_lets_a_newcomer_authorize_both_oauth_demo_agents(
    make_run: tuple[subprocess.Popen[bytes], httpx.Client, float], tmp_path: Path
) -> None:
    """As the banner says: POST authorize, open the URL, click Allow at the sandbox."""
    _, api, _ = make_run
    ca_file = tmp_path / "data" / "sandbox" / "tls" / "ca.pem"
    for demo in DEMOS:
        path = f"/bridge/agents/{demo.agent_id}/email-config"
        saved = _eventually(api, path, _configured)  # the agent is registered before its config
        assert saved["status"] == "awaiting_authorization"
        begun = api.post(f"{path}/authorize").json()
        with Browser(ca_file) as browser:
            landed = browser.consent(browser.open(begun["authorization_url"]))
        assert landed.status_code == 200, landed.text[:300]

        view = _eventually(api, path, lambda answer: answer.json()["status"] == "connected")

        assert (view["last_test"]["email"], view["last_test"]["unread"]) == (demo.email, 1)
    _the_demos_mail_each_other_as_the_banner_shows(api, tmp_path, ca_file)


def _the_demos_mail_each_other_as_the_banner_shows(
    api: httpx.Client, tmp_path: Path, ca_file: Path
) -> None:
    """The printed "Send mail" command: demo-google sends to demo-microsoft through the sandbox's
    Gmail; the message lands in the Microsoft mailbox and that demo's worker reads it from Graph.
    The printed "Drop in mail" command puts a message into the Gmail demo's inbox."""
    send = re.search(r"Send mail +curl .*? (http\S+/messages) -d '(.+)'", _output(tmp_path))
    drop = re.search(r"Drop in mail +curl .*? (https\S+/deliver) -d '(.+)'", _output(tmp_path))
    assert send is not None and drop is not None, _output(tmp_path)
    queued = api.post(send.group(1), json=json.loads(send.group(2)))
    assert queued.status_code == 202, queued.text
    outcome = _eventually(
        api, f"/bridge/agents/demo-google/messages/{queued.json()['command_id']}",
        lambda answer: answer.json()["status"] != "queued",
    )  # fmt: skip
    assert outcome["status"] == "sent", outcome
    sandbox = drop.group(1).removesuffix("/_sandbox/mail/deliver")
    trusting = ssl.create_default_context(cafile=str(ca_file))
    with httpx.Client(base_url=sandbox, verify=trusting, timeout=10) as admin:
        dropped = admin.post("/_sandbox/mail/deliver", json=json.loads(drop.group(2)))
        assert dropped.status_code in (200, 201), dropped.text
        for provider, email, message in (
            ("microsoft", DEMOS[1].email, outcome["message_id"]),
            ("google", DEMOS[0].email, None),
        ):
            _read_by_its_worker(admin, provider, email, message)


def _read_by_its_worker(
    admin: httpx.Client, provider: str, email: str, message_id: str | None
) -> None:
    """The message (the newest, if no id is given) is in the mailbox and its poll fetched it."""
    box = admin.get("/_sandbox/mail", params={"provider": provider, "email": email}).json()
    found = [m for m in box if message_id is None or m["message_id"] == message_id]
    assert found, box
    newest = found[-1]["id"]
    deadline = time.monotonic() + READY_WITHIN_SECONDS * 2
    while not any(
        newest in r["path"]
        for r in admin.get("/_sandbox/requests", params={"provider": provider}).json()
    ):
        assert time.monotonic() < deadline, f"{provider} worker never read {newest}"
        time.sleep(0.2)


def _configured(answer: httpx.Response) -> bool:
    return answer.status_code == 200 and answer.json()["status"] != "not_connected"


def _eventually(api: httpx.Client, path: str, done: Callable[[httpx.Response], bool]) -> Any:
    """The JSON of ``GET path`` once ``done`` says so, within the readiness bound."""
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while not done(answer := api.get(path)):
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.1)
    return answer.json()


def _printed_link(tmp_path: Path, label: str) -> str:
    """The URL ``make run``'s banner prints after ``label`` (the banner comes once all is up)."""
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while not (found := re.search(rf"^ *{label} +(\S+)", _output(tmp_path), re.M)):
        assert time.monotonic() < deadline, _output(tmp_path)
        time.sleep(0.1)
    return found.group(1)


def _output(tmp_path: Path) -> str:
    return (tmp_path / "make-run.out").read_text(errors="replace")


async def test_a_newcomer_opens_the_printed_email_tab_connects_then_breaks_the_password(
    make_run: tuple[subprocess.Popen[bytes], httpx.Client, float],
    tmp_path: Path,
    browser_context: BrowserContext,
) -> None:
    tab = EmailTab(await browser_context.new_page())
    await tab.page.goto(_printed_link(tmp_path, "Email tab"))
    await tab.badge_shows("Configured")

    await tab.press("Test Connection")
    await tab.badge_shows("Connected")
    await tab.says("#result-total", "2")
    await tab.says("#result-unread", "1")

    await tab.fill("App password", "not-the-password")
    await tab.press("Save Configuration")
    await tab.press("Test Connection")
    await tab.badge_shows("Error")
    await tab.says("#last-error", "Regenerate the app password")


def test_ctrl_c_stops_everything_and_leaves_no_process(
    make_run: tuple[subprocess.Popen[bytes], httpx.Client, float], tmp_path: Path
) -> None:
    process, _, _ = make_run
    data_dir = str(tmp_path / "data")
    started = descendants(process.pid) | processes_mentioning(data_dir)
    assert len(started) >= 6, "the servers and the four services should be running"

    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends to the foreground group
    assert process.wait(timeout=60) == 0

    deadline = time.monotonic() + 10
    while (left := alive(started) | processes_mentioning(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == set()

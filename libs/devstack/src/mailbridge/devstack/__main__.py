"""``python -m mailbridge.devstack run``: the whole system on this machine until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from pathlib import Path

from mailbridge.devstack.browser import BROWSER_PACKAGES
from mailbridge.devstack.debian import ensure_debian_packages
from mailbridge.devstack.mailstack import REQUIRED_PACKAGES
from mailbridge.devstack.stack import DEMO_AGENT, DevStack

# promtool checks the alert rules and the dashboard's queries (tests/contract/test_observability).
# Debian ships it in the prometheus package, which on a machine with systemd also starts a server:
# `systemctl disable --now prometheus` stops it; the tests need only the binary.
CHECK_PACKAGES: dict[str, list[str]] = {"promtool": ["prometheus"]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mailbridge.devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start everything; Ctrl-C stops everything")
    run.add_argument("--data-dir", type=Path, default=Path(".data"))
    run.add_argument("--port", type=int, default=8080, help="config-api HTTP port")
    run.add_argument("--no-mail", action="store_true", help="skip the local Dovecot/Postfix")
    sub.add_parser(
        "install-packages",
        help="install Dovecot, Postfix, chromium and promtool (Debian, as root)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="devstack     | %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "install-packages":
        ensure_debian_packages({**REQUIRED_PACKAGES, **BROWSER_PACKAGES, **CHECK_PACKAGES})
    else:
        serve(DevStack(args.data_dir, http_port=args.port, with_mail=not args.no_mail))


def serve(stack: DevStack) -> None:
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    started = time.monotonic()
    stack.start()
    print(banner(stack, time.monotonic() - started), flush=True)
    stopping.wait()
    print("\nstopping…", flush=True)
    stack.stop()
    print("stopped.", flush=True)


def banner(stack: DevStack, seconds: float) -> str:
    url = stack.base_url
    lines = [
        "",
        f"mailbridge is up ({seconds:.1f}s).",
        f"  API docs      {url}/docs",
        f"  Health        {url}/healthz   Readiness {url}/readyz",
        f"  API key       {stack.api_key}",
        f"                (an operator key made for this run, also in {stack.data_dir}/api-key)",
    ]
    if stack.mail is not None:
        lines += [
            f"  Demo agent    {DEMO_AGENT}: its mailbox lives in the local mail stack",
            f"  Email tab     {stack.email_tab_url}",
            "                (opens once, and soon expires; for a new link, POST "
            f"/bridge/agents/{DEMO_AGENT}/ui-sessions with the key)",
            f"  Try it        export MAILBRIDGE_API_KEY={stack.api_key}",
            f'                curl -H "Authorization: Bearer $MAILBRIDGE_API_KEY" -X POST '
            f"{url}/bridge/agents/{DEMO_AGENT}/email-config/test",
        ]
    for demo in stack.oauth_demos:
        lines += [
            f"  OAuth demo    {demo.agent_id}: signs in at the sandbox {demo.provider} "
            f"({stack.sandbox.base_url if stack.sandbox else ''}, its own CA: the browser warns)",
            f'                curl -H "Authorization: Bearer $MAILBRIDGE_API_KEY" -X POST '
            f"{url}/bridge/agents/{demo.agent_id}/email-config/authorize",
            "                then open its authorization_url and click Allow",
        ]
    lines += _mail_between_demos(stack)
    lines.append("Press Ctrl-C to stop everything.")
    return "\n".join(lines)


def _mail_between_demos(stack: DevStack) -> list[str]:
    """Once authorized, the OAuth demos send and receive through the sandbox's Gmail and Graph:
    mail dropped into a demo mailbox, or sent by one demo to the other, arrives as an event."""
    if stack.sandbox is None or len(stack.oauth_demos) < 2:
        return []
    google, microsoft = stack.oauth_demos[0], stack.oauth_demos[1]
    ca_file = stack.data_dir / "sandbox" / "tls" / "ca.pem"
    drop = json.dumps(
        {"provider": google.provider, "email": google.email, "from": "ada@example.com",
         "subject": "Hello", "text": "Hi there"}
    )  # fmt: skip
    send = json.dumps({"to": [microsoft.email], "subject": "Hello", "text": "From the Gmail demo"})
    return [
        f"  Drop in mail  curl --cacert {ca_file} -H 'content-type: application/json'"
        f" {stack.sandbox.base_url}/_sandbox/mail/deliver -d '{drop}'",
        f'  Send mail     curl -H "Authorization: Bearer $MAILBRIDGE_API_KEY"'
        f" -H 'content-type: application/json' {stack.base_url}/bridge/agents/"
        f"{google.agent_id}/messages -d '{send}'",
        f"                (it lands in {microsoft.agent_id}'s mailbox, which polls it in)",
    ]


if __name__ == "__main__":
    main()

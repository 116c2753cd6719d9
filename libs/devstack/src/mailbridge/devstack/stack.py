"""The whole system on one machine, for ``make run``: NATS, PostgreSQL, the local mail stack, the
sandbox OAuth provider, the four services, a demo agent whose mailbox lives in the local mail
stack, and a Google and a Microsoft demo agent that sign in at the sandbox."""

from __future__ import annotations

import logging
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from mailbridge.devstack import oauth_demo
from mailbridge.devstack.environment import Infrastructure
from mailbridge.devstack.mailstack import MailStack, MailStackEndpoints
from mailbridge.devstack.nats import EmbeddedNats
from mailbridge.devstack.postgres import EmbeddedPostgres
from mailbridge.devstack.sandbox import SandboxProvider
from mailbridge.devstack.system import running_system
from mailbridge.shared.crypto import generate_key_spec

log = logging.getLogger(__name__)

DEMO_AGENT = "demo-agent"
DEMO_ORG = "demo-org"
DEMO_LOCAL_PART = "demo"


@dataclass(frozen=True)
class DemoMailbox:
    address: str
    password: str


class DevStack:
    def __init__(self, data_dir: Path, *, http_port: int = 8080, with_mail: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.http_port = http_port
        self.with_mail = with_mail
        self._stack = ExitStack()
        self.mail: MailStackEndpoints | None = None
        self.api_key = ""
        self.demo: DemoMailbox | None = None
        self.email_tab_url = ""  # the demo agent's Email tab, opened once within its lifetime
        self.oauth_demos: list[oauth_demo.OAuthDemo] = []
        self.sandbox: SandboxProvider | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        nats = self._stack.enter_context(EmbeddedNats(self.data_dir / "nats"))
        postgres = self._stack.enter_context(EmbeddedPostgres(self.data_dir / "postgres"))
        mail_stack = self._start_mail()
        sandbox = self._stack.enter_context(SandboxProvider(self.data_dir / "sandbox"))
        self.sandbox = sandbox
        infra = Infrastructure(
            nats.url,
            postgres.dsn,
            self._sealing_keys(),
            self.mail.ca_file if self.mail else None,
            providers=sandbox.settings(),
        )
        system = self._stack.enter_context(running_system(infra, http_port=self.http_port))
        self.api_key = system.operator_key
        key_file = self.data_dir / "api-key"
        key_file.write_text(self.api_key + "\n")
        key_file.chmod(0o600)
        if mail_stack is not None:
            self._configure_demo_agent(mail_stack)
            self.email_tab_url = self._email_tab_link(DEMO_AGENT)
        with self._api() as client:
            self.oauth_demos = oauth_demo.configure(client, sandbox.admin, self.base_url)

    def _api(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        return httpx.Client(base_url=self.base_url, timeout=10, headers=headers)

    def _start_mail(self) -> MailStack | None:
        if not self.with_mail:
            return None
        mail_dir = self.data_dir / "mail"
        shutil.rmtree(mail_dir, ignore_errors=True)  # the demo mailbox is made anew each run
        try:
            stack = MailStack(mail_dir)
            self.mail = stack.start()
        except Exception:
            log.exception("the local mail stack could not start; running without the demo mailbox")
            return None
        self._stack.callback(stack.stop)
        return stack

    def _sealing_keys(self) -> str:
        path = self.data_dir / "sealing-keys"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(generate_key_spec("dev1"))
            path.chmod(0o600)
        return path.read_text().strip()

    def _configure_demo_agent(self, mail_stack: MailStack) -> None:
        assert self.mail is not None
        password = generate_key_spec("pw").split(":", 1)[1][:20]
        address = mail_stack.create_mailbox(DEMO_LOCAL_PART, password)
        mail_stack.seed_message(address, subject="Welcome to mailbridge", body="Hello!", seen=True)
        mail_stack.seed_message(address, subject="Your first unread mail", body="Reply to me.")
        with self._api() as client:
            client.put(f"/bridge/agents/{DEMO_AGENT}", json={"org_id": DEMO_ORG, "name": "Demo"})
            answer = client.put(
                f"/bridge/agents/{DEMO_AGENT}/email-config",
                json=demo_config(self.mail, address, password),
            )
            answer.raise_for_status()
        self.demo = DemoMailbox(address, password)

    def _email_tab_link(self, agent_id: str) -> str:
        """A link to the agent's Email tab, asked for as a platform's backend asks for one."""
        with self._api() as client:
            answer = client.post(f"/bridge/agents/{agent_id}/ui-sessions")
            answer.raise_for_status()
            return str(answer.json()["url"])

    def stop(self) -> None:
        self._stack.close()


def demo_config(mail: MailStackEndpoints, address: str, password: str) -> dict[str, object]:
    return {
        "provider": "imap",
        "email": address,
        "preset": "custom",
        "imap": {"host": mail.host, "port": mail.imap_port, "security": "ssl"},
        "smtp": {"host": mail.host, "port": mail.smtp_starttls_port, "security": "starttls"},
        "password": password,
    }

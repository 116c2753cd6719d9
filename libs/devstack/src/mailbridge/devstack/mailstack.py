"""Local mail stack of real servers for development and tests.

``MailStack`` runs a private Dovecot (IMAP on implicit TLS, LMTP delivery, SASL
for Postfix; optionally XOAUTH2, its tokens checked at an introspection endpoint)
and a private Postfix (submission with STARTTLS and with implicit TLS) under one
data directory, on free loopback ports, with a per-run CA. Several stacks can run
side by side; none touches the system's default instances.

Each server runs under a tiny supervisor process (see ``reaper``), so stop()
returns only once no server process is left, even on machines whose PID 1 does
not reap orphans.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType

from mailbridge.devstack import dovecot, postfix
from mailbridge.devstack.certs import CertificatePaths, client_ssl_context, issue_certificates
from mailbridge.devstack.debian import MissingPackagesError, ensure_debian_packages, find_binary
from mailbridge.devstack.processes import free_ports, let_others_traverse
from mailbridge.devstack.reaper import Server

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAIL_USER = "mailbridge-mail"
REQUIRED_PACKAGES: dict[str, list[str]] = {
    "dovecot": ["dovecot-imapd", "dovecot-lmtpd"],
    "doveadm": ["dovecot-imapd", "dovecot-lmtpd"],
    "/usr/lib/dovecot/imap": ["dovecot-imapd"],
    "/usr/lib/dovecot/lmtp": ["dovecot-lmtpd"],
    "postfix": ["postfix"],
}
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
_PROBE_TIMEOUT = 2.0
_POLL = 0.05
_LOCAL_PART = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]")
_MAX_RUNTIME_PATH = 60
DOMAIN = "mailbridge.example"  # the mail domain a stack serves unless told otherwise


class MailStackError(RuntimeError):
    """The mail stack could not be started, stopped or used."""


@dataclass(frozen=True)
class MailStackEndpoints:
    """Where clients reach the running stack."""

    host: str
    imap_port: int
    smtp_starttls_port: int
    smtp_tls_port: int
    ca_file: Path
    domain: str = DOMAIN

    @property
    def authserv_id(self) -> str:
        """The name the stack's Postfix gives itself (``myhostname``): the authserv-id of the
        Authentication-Results its receiving server would write (RFC 8601)."""
        return authserv_id(self.domain)


class MailStack:
    """A private Dovecot + Postfix pair under ``data_dir`` serving ``domain``."""

    def __init__(
        self,
        data_dir: Path,
        domain: str = DOMAIN,
        oauth2: dovecot.OAuth2Introspection | None = None,
        imap_idle: bool = True,
        process_limit: int = dovecot.PROCESS_LIMIT,
        verbose_proctitle: bool = False,
    ) -> None:
        """``oauth2``: log in XOAUTH2/OAUTHBEARER too, tokens checked at that introspection.
        ``imap_idle``: False makes a server that does not offer IDLE (RFC 2177), as some do.
        ``process_limit``: Dovecot's processes per service, raised for more sessions than the
        tests open (a benchmark's thousand watched mailboxes); ``verbose_proctitle``: each imap
        process's title shows its user and command (``idle_users`` reads them)."""
        if not _DOMAIN.fullmatch(domain):
            raise ValueError(f"not a lower-case mail domain: {domain!r}")
        self.data_dir = data_dir.absolute()
        self.domain = domain
        self._oauth2 = oauth2
        self._imap_idle = imap_idle
        self._process_limit = process_limit
        self._verbose_proctitle = verbose_proctitle
        self._logs = self.data_dir / "logs"
        self._run = _runtime_dir(self.data_dir)
        self._dovecot = dovecot.DovecotLayout(
            root=self.data_dir / "dovecot",
            mail_root=self.data_dir / "mail",
            log_file=self._logs / "dovecot.log",
            base_dir=self._run / "dovecot",
        )
        self._postfix = postfix.PostfixLayout(
            root=self.data_dir / "postfix",
            log_file=self._logs / "postfix.log",
            queue_dir=self._run / "postfix",
        )
        self._servers: dict[str, Server] = {}
        self._endpoints: MailStackEndpoints | None = None
        self._lock = threading.Lock()

    @property
    def endpoints(self) -> MailStackEndpoints:
        """Endpoints of the running stack."""
        self._require_running()
        assert self._endpoints is not None
        return self._endpoints

    @property
    def postfix_log(self) -> Path:
        """Postfix's log: what it accepted and for whom (see ``maillog``)."""
        return self._postfix.log_file

    def _require_running(self) -> None:
        if self._endpoints is None:
            raise MailStackError("the mail stack is not running; call start() first")

    def start(self) -> MailStackEndpoints:
        """Write the configuration, start both servers and wait until they accept TLS."""
        if self._endpoints is not None:
            raise MailStackError("the mail stack is already running")
        began = time.monotonic()
        _require_root()
        ensure_debian_packages(REQUIRED_PACKAGES)
        certs, dovecot_ports, postfix_ports = self._configure()
        context = client_ssl_context(certs.ca_file)
        try:
            self._launch()
            self._wait_until_ready(
                {
                    "dovecot": lambda: dovecot.probe(HOST, dovecot_ports, context, _PROBE_TIMEOUT),
                    "postfix": lambda: postfix.probe(HOST, postfix_ports, context, _PROBE_TIMEOUT),
                }
            )
        except BaseException:
            self._shutdown()
            raise
        self._endpoints = MailStackEndpoints(
            host=HOST,
            imap_port=dovecot_ports.imaps,
            smtp_starttls_port=postfix_ports.submission,
            smtp_tls_port=postfix_ports.submissions,
            ca_file=certs.ca_file,
            domain=self.domain,
        )
        log.info("mail stack up in %.2fs: %s", time.monotonic() - began, self._endpoints)
        return self._endpoints

    def stop(self) -> None:
        """Stop both servers; returns once none of their processes is left."""
        self._shutdown()
        self._endpoints = None

    def __enter__(self) -> MailStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def create_mailbox(self, local_part: str, password: str) -> str:
        """Create (or reset) a mailbox and return its address; it can log in at once."""
        self._require_running()
        local_part = local_part.lower()
        if not _LOCAL_PART.fullmatch(local_part):
            raise ValueError(f"unsupported local part {local_part!r}: use [a-z0-9._-]")
        if not password:
            raise ValueError("the password must not be empty")
        address = f"{local_part}@{self.domain}"
        with self._lock:
            dovecot.add_user(self._dovecot.users_dir, address, password)
        return address

    def change_password(self, address: str, password: str) -> None:
        """Give an existing mailbox a new password, as its provider would: the old one no longer
        logs in, and the sessions logged in with it are cut (Gmail and Microsoft 365 end them on
        a password change; Dovecot alone would keep them)."""
        self._require_running()
        with self._lock:
            dovecot.add_user(self._dovecot.users_dir, address, password)
        self.kick(address)

    def kick(self, address: str) -> None:
        """Cut every IMAP session of the mailbox, as a server restart or a network drop would."""
        self._require_running()
        dovecot.kick(self._dovecot.config_file, address)

    def seed_message(
        self,
        address: str,
        *,
        subject: str,
        body: str,
        sender: str = "sender@example.com",
        seen: bool = False,
        folder: str = "INBOX",
    ) -> None:
        """Store a message in the mailbox through Dovecot, visible at once."""
        self._require_running()
        message = EmailMessage()
        message["From"] = sender
        message["To"] = address
        message["Subject"] = subject
        message["Date"] = email.utils.formatdate(localtime=True)
        message["Message-ID"] = email.utils.make_msgid(domain=self.domain)
        message.set_content(body)
        dovecot.save_message(
            self._dovecot.config_file,
            address,
            folder,
            bytes(message),
            str(message["Message-ID"]),
            seen,
        )

    def seed_raw(self, address: str, raw: bytes, folder: str = "INBOX") -> None:
        """Store ``raw`` (RFC 5322 bytes, every header as given: an Authentication-Results a
        sender forged, a look-alike From) in the mailbox through Dovecot, unseen, at once."""
        self._require_running()
        dovecot.save_message(self._dovecot.config_file, address, folder, raw, "", seen=False)

    def count_messages(self, address: str, folder: str = "INBOX") -> int:
        """Number of messages in ``folder`` of ``address``, as Dovecot sees it."""
        self._require_running()
        return dovecot.count_messages(self._dovecot.config_file, address, folder)

    def seen_uids(self, address: str, folder: str = "INBOX") -> set[int]:
        """The UIDs of ``folder`` of ``address`` flagged seen, as Dovecot sees them."""
        self._require_running()
        return dovecot.seen_uids(self._dovecot.config_file, address, folder)

    def idle_users(self) -> set[str]:
        """The addresses with an IMAP session in IDLE now (needs ``verbose_proctitle``)."""
        self._require_running()
        return dovecot.idle_users(self._dovecot.instance_name)

    def process_ids(self) -> set[int]:
        """Every live process of this stack: supervisors, server masters and their workers."""
        return {pid for server in self._servers.values() for pid in server.process_ids()}

    def _prepare_directories(self, user: dovecot.MailUser) -> CertificatePaths:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _check_traversable(self.data_dir)
        os.chmod(self.data_dir, 0o711)  # noqa: S103 - the servers' users must traverse it
        self._run.mkdir(mode=0o755, parents=True, exist_ok=True)
        for directory in (self._logs, self._run, self._dovecot.root, self._dovecot.state_dir):
            directory.mkdir(exist_ok=True)
            os.chmod(directory, 0o755)  # noqa: S103 - read by the servers' users
        self._dovecot.mail_root.mkdir(exist_ok=True)
        os.chown(self._dovecot.mail_root, user.uid, user.gid)
        os.chmod(self._dovecot.mail_root, 0o700)
        dovecot.prepare_users_dir(self._dovecot.users_dir)
        return issue_certificates(self.data_dir / "certs")

    def _configure(
        self,
    ) -> tuple[CertificatePaths, dovecot.DovecotPorts, postfix.PostfixPorts]:
        """Directories, certificates, ports and both servers' configuration files."""
        user = dovecot.ensure_mail_user(MAIL_USER)
        certs = self._prepare_directories(user)
        imaps, lmtp, auth, submission, submissions = free_ports(5)
        dovecot_ports = dovecot.DovecotPorts(imaps=imaps, lmtp=lmtp, auth=auth)
        postfix_ports = postfix.PostfixPorts(
            submission=submission, submissions=submissions, dovecot_auth=auth, dovecot_lmtp=lmtp
        )
        oauth2 = self._oauth2 is not None
        if self._oauth2 is not None:
            dovecot.write_oauth2_config(self._dovecot, self._oauth2)
        config = dovecot.render_config(
            self._dovecot, dovecot_ports, certs, user, self.domain,
            oauth2=oauth2, imap_idle=self._imap_idle, process_limit=self._process_limit,
            verbose_proctitle=self._verbose_proctitle,
        )  # fmt: skip
        self._dovecot.config_file.write_text(config)
        postfix.write_config(self._postfix, postfix_ports, certs, self.domain)
        return certs, dovecot_ports, postfix_ports

    def _launch(self) -> None:
        dovecot_binary = find_binary("dovecot") or "dovecot"
        postfix_binary = find_binary("postfix") or "postfix"
        self._servers["dovecot"] = Server(
            [dovecot_binary, "-F", "-c", str(self._dovecot.config_file)],
            output=self._logs / "dovecot.out",
            log_file=self._dovecot.log_file,
            cwd=self.data_dir,
        )
        self._servers["postfix"] = Server(
            postfix.start_command(self._postfix, postfix_binary),
            output=self._logs / "postfix.out",
            log_file=self._postfix.log_file,
            cwd=self.data_dir,
        )

    def _wait_until_ready(self, probes: dict[str, Callable[[], None]]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        errors: dict[str, str] = {}
        attempt = 0
        while probes:
            for name, probe in list(probes.items()):
                server = self._servers[name]
                if not server.running():
                    raise MailStackError(f"{name} exited during start-up\n{server.report()}")
                try:
                    probe()
                except OSError as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
                else:
                    del probes[name]
            if probes and time.monotonic() > deadline:
                name = next(iter(probes))
                raise MailStackError(
                    f"{name} did not accept TLS connections within {START_TIMEOUT:.0f}s "
                    f"({errors.get(name)})\n{self._servers[name].report()}"
                )
            if probes:
                time.sleep(min(_POLL * 1.5**attempt, 0.5))
                attempt += 1

    def _shutdown(self) -> None:
        with self._lock:
            servers, self._servers = self._servers, {}
        for server in servers.values():
            server.request_stop()
        for server in servers.values():
            server.wait(STOP_TIMEOUT)
        if self.data_dir not in self._run.parents:
            shutil.rmtree(self._run, ignore_errors=True)
            with suppress(OSError):
                self._run.parent.rmdir()  # only when no other stack uses it


def authserv_id(domain: str) -> str:
    """The host name the Postfix of a stack serving ``domain`` has (``myhostname =
    mail.$domain``, templates/main.cf)."""
    return f"mail.{domain}"


def _require_root() -> None:
    if os.geteuid() != 0:
        raise MailStackError(
            "the mail stack must run as root: Postfix's master and Dovecot's mail "
            "processes switch users"
        )


def _check_traversable(data_dir: Path) -> None:
    """Dovecot and Postfix run as unprivileged users: they must reach data_dir."""
    if any(character.isspace() for character in str(data_dir)):
        raise MailStackError(f"data_dir must not contain whitespace: {data_dir}")
    let_others_traverse(data_dir.parent)


def _runtime_dir(data_dir: Path) -> Path:
    """Sockets and the Postfix queue: ``data_dir/run``, or under /run when that is too long.

    Unix socket paths max out at 107 bytes and the longest socket names below this
    directory (Dovecot's base_dir, Postfix's queue) take about 40 more.
    """
    local = data_dir / "run"
    if len(str(local)) <= _MAX_RUNTIME_PATH:
        return local
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return Path("/run/mailbridge-devstack") / digest


__all__ = [
    "MailStack",
    "MailStackEndpoints",
    "MailStackError",
    "MissingPackagesError",
    "client_ssl_context",
]

"""Postfix side of the local mail stack: a private, submission-only MTA instance.

Renders ``main.cf`` and ``master.cf`` (from ``templates/``) for a Postfix instance with its own
config_directory, queue_directory and data_directory. It listens only on two
loopback ports (STARTTLS submission and implicit-TLS submission), authenticates
through Dovecot's auth service and hands mail for the stack's domain to Dovecot
over LMTP. Nothing leaves the machine: mail for other domains is accepted and
discarded.
"""

from __future__ import annotations

import os
import shlex
import smtplib
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from mailbridge.devstack import templates
from mailbridge.devstack.certs import CertificatePaths
from mailbridge.devstack.debian import find_binary

_BACKDATE_SECONDS = 60
# Room for several mail-workers' pooled SMTP sessions (one smtpd process each); Postfix's default
# is 100, beyond which connections wait unanswered in the listen queue.
PROCESS_LIMIT = 1000


@dataclass(frozen=True)
class PostfixPorts:
    """Loopback ports Postfix listens on, and the Dovecot ports it talks to."""

    submission: int
    submissions: int
    dovecot_auth: int
    dovecot_lmtp: int


@dataclass(frozen=True)
class PostfixLayout:
    """Directories and files of one Postfix instance."""

    root: Path
    log_file: Path
    queue_dir: Path  # holds public/postlog: keep its path short (unix socket path limit)

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def pid_file(self) -> Path:
        return self.queue_dir / "pid" / "master.pid"


def render_main_cf(
    layout: PostfixLayout, ports: PostfixPorts, certs: CertificatePaths, domain: str
) -> str:
    """The instance's main.cf, from ``templates/main.cf``."""
    return templates.render(
        "main.cf",
        queue_directory=layout.queue_dir,
        data_directory=layout.data_dir,
        maillog_file=layout.log_file,
        maillog_file_prefixes=layout.log_file.parent,
        domain=domain,
        process_limit=PROCESS_LIMIT,
        dovecot_lmtp_port=ports.dovecot_lmtp,
        dovecot_auth_port=ports.dovecot_auth,
        cert_file=certs.cert_file,
        key_file=certs.key_file,
    )


def render_master_cf(ports: PostfixPorts) -> str:
    """The instance's master.cf: two submission listeners plus the internal services."""
    return templates.render(
        "master.cf", submission_port=ports.submission, submissions_port=ports.submissions
    )


def write_config(
    layout: PostfixLayout, ports: PostfixPorts, certs: CertificatePaths, domain: str
) -> None:
    """Create the instance directories and write main.cf and master.cf (root-owned)."""
    for directory in (layout.root, layout.config_dir, layout.queue_dir):
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)  # noqa: S103 - the layout Postfix itself expects
    files = {
        layout.config_dir / "main.cf": render_main_cf(layout, ports, certs, domain),
        layout.config_dir / "master.cf": render_master_cf(ports),
    }
    # Postfix re-reads a "hot" file (modified within the last second or so) until it
    # cools down, which would add about two seconds to every start: backdate them.
    cooled = time.time() - _BACKDATE_SECONDS
    for path, text in files.items():
        path.write_text(text)
        os.utime(path, (cooled, cooled))


def start_command(layout: PostfixLayout, postfix_binary: str) -> list[str]:
    """Start the instance; the master daemon reports whether it initialised.

    The postfix command prints its early fatal errors (bad main.cf values) only to a
    terminal, so it runs under script(1) from util-linux when that is available.
    """
    command = [postfix_binary, "-c", str(layout.config_dir), "start"]
    script = find_binary("script")
    if script is None:
        return command
    return [script, "--quiet", "--return", "--command", shlex.join(command), "/dev/null"]


def probe(host: str, ports: PostfixPorts, context: ssl.SSLContext, timeout: float) -> None:
    """Raise unless both submission ports complete a verified TLS handshake."""
    with smtplib.SMTP(host, ports.submission, timeout=timeout) as smtp:
        smtp.starttls(context=context)
        smtp.ehlo()
    with smtplib.SMTP_SSL(host, ports.submissions, context=context, timeout=timeout) as smtp:
        smtp.ehlo()

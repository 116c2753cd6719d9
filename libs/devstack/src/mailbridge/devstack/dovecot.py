"""Dovecot side of the local mail stack: configuration, users and mailbox access.

Renders a self-contained ``dovecot.conf`` from ``templates/dovecot.conf`` (own base_dir,
state_dir, logs and user database under the stack's data directory), manages the passwd-file
user database (one small passwd-file per mailbox) and wraps the few ``doveadm`` calls the stack
needs. Dovecot serves IMAP on implicit TLS only, delivers over LMTP and exposes its auth service
on a loopback TCP port for Postfix's SMTP AUTH.

With ``OAuth2Introspection`` it also logs in XOAUTH2 and OAUTHBEARER (IMAP, and SMTP through
Postfix): an ``oauth2`` passdb asks an RFC 7662 introspection endpoint over HTTPS whether the
token is active and whose ``email`` it is.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import math
import os
import pwd
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from mailbridge.devstack import templates
from mailbridge.devstack.certs import CertificatePaths
from mailbridge.devstack.debian import find_binary

log = logging.getLogger(__name__)

INTERNAL_USER = "dovecot"
LOGIN_USER = "dovenull"
_DOVEADM_TIMEOUT = 30.0
_MESSAGES = re.compile(r"(?:^|\s)messages=(\d+)(?:\s|$)")
# Room for several mail-workers, each keeping pooled sessions for many accounts (the
# exactly-once test runs 3 workers over 50 accounts): with TLS, every IMAP session holds an
# imap-login process (its TLS proxy) beside its imap process. Dovecot's defaults are 100
# processes per service and 10 sessions per user and client address.
PROCESS_LIMIT = 1000
USER_IP_CONNECTIONS = 50


class DoveadmError(RuntimeError):
    """A doveadm command failed."""


@dataclass(frozen=True)
class DovecotPorts:
    """Loopback TCP ports Dovecot listens on."""

    imaps: int
    lmtp: int
    auth: int


@dataclass(frozen=True)
class OAuth2Introspection:
    """Where the oauth2 passdb checks tokens (``POST token=…``), and the CA of that server."""

    url: str
    ca_file: Path


# Beside an oauth2 passdb the passwd-file answers passwords, and the lookups (``none``) that the
# static userdb makes to know a user exists: the oauth2 passdb cannot answer those.
_PASSWD_FILE_MECHANISMS = "  mechanisms = plain login none\n"
_OAUTH2_PASSDB = """passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = %s
}
"""


@dataclass(frozen=True)
class MailUser:
    """The unprivileged system account that owns every mailbox."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class DovecotLayout:
    """Files and directories of one Dovecot instance."""

    root: Path
    mail_root: Path
    log_file: Path
    base_dir: Path  # sockets: keep its path short (unix socket paths max out at 107 bytes)

    @property
    def config_file(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def oauth2_config_file(self) -> Path:
        return self.root / "dovecot-oauth2.conf.ext"

    @property
    def oauth2_ca_file(self) -> Path:
        return self.root / "oauth2-ca.pem"

    @property
    def users_dir(self) -> Path:
        return self.root / "users"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def instance_name(self) -> str:
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:8]
        return f"mailbridge-{digest}"


def ensure_mail_user(name: str) -> MailUser:
    """The unprivileged system user owning all mail; created with useradd if missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = find_binary("useradd") or "useradd"
        command = [useradd, "--system", "--user-group", "--no-create-home"]
        command += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        try:
            entry = pwd.getpwnam(name)  # another stack may have won the race
        except KeyError:
            raise RuntimeError(f"useradd {name} failed: {result.stderr.strip()}") from None
        log.info("created system user %s (uid %d)", name, entry.pw_uid)
    return MailUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def render_config(
    layout: DovecotLayout,
    ports: DovecotPorts,
    certs: CertificatePaths,
    user: MailUser,
    domain: str,
    oauth2: bool = False,
    imap_idle: bool = True,
    process_limit: int = PROCESS_LIMIT,
    verbose_proctitle: bool = False,
) -> str:
    """The complete dovecot.conf of one stack, from ``templates/dovecot.conf``; with ``oauth2``,
    the passdb ``write_oauth2_config`` configures; without ``imap_idle``, IDLE is not offered.
    ``process_limit``: processes per service (each TLS session holds two, see PROCESS_LIMIT);
    ``verbose_proctitle``: each imap process's title names its user and current command (a
    session in IDLE shows ``IDLE``), so ``ps`` tells which mailboxes are being watched."""
    return templates.render(
        "dovecot.conf",
        instance_name=layout.instance_name,
        base_dir=layout.base_dir,
        state_dir=layout.state_dir,
        log_path=layout.log_file,
        internal_user=INTERNAL_USER,
        login_user=LOGIN_USER,
        cert_file=certs.cert_file,
        key_file=certs.key_file,
        process_limit=process_limit,
        client_limit=4 * process_limit,
        verbose_proctitle="verbose_proctitle = yes\n" if verbose_proctitle else "",
        domain=domain,
        uid=user.uid,
        gid=user.gid,
        users_dir=layout.users_dir,
        mail_root=layout.mail_root,
        user_ip_connections=USER_IP_CONNECTIONS,
        imaps_port=ports.imaps,
        lmtp_port=ports.lmtp,
        auth_port=ports.auth,
        oauth2_mechanisms=" xoauth2 oauthbearer" if oauth2 else "",
        passwd_file_mechanisms=_PASSWD_FILE_MECHANISMS if oauth2 else "",
        oauth2_passdb=_OAUTH2_PASSDB % layout.oauth2_config_file if oauth2 else "",
        imap_capability="" if imap_idle else _CAPABILITY_WITHOUT_IDLE,
    )


# Dovecot 2.3's own post-login list, less IDLE (``imap_capability`` replaces the whole list).
_CAPABILITY_WITHOUT_IDLE = (
    "  imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT SORT=DISPLAY"
    " THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE"
    " UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH"
    " ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY"
    " PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE\n"
)


def write_oauth2_config(layout: DovecotLayout, introspection: OAuth2Introspection) -> None:
    """The oauth2 passdb's settings, and a copy of the CA the auth process (user dovecot) reads."""
    shutil.copyfile(introspection.ca_file, layout.oauth2_ca_file)
    os.chmod(layout.oauth2_ca_file, 0o644)
    text = templates.render(
        "dovecot-oauth2.conf.ext",
        introspection_url=introspection.url,
        ca_file=layout.oauth2_ca_file,
    )
    layout.oauth2_config_file.write_text(text)


def hash_password(password: str) -> str:
    """Salted SHA-512 in Dovecot's ``{SSHA512}`` scheme."""
    salt = secrets.token_bytes(16)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode("ascii")


def add_user(users_dir: Path, address: str, password: str) -> None:
    """Add (or replace) ``address``: one passwd-file per user, ``users_dir/<domain>/<local>``.

    With a per-user path Dovecot opens a new user's file on the first lookup. (A
    single shared passwd-file is re-read at most once per second, so a mailbox
    created right after another login could stay unknown for up to a second.)
    """
    local_part, _, domain = address.partition("@")
    directory = users_dir / domain
    _make_private_dir(directory)
    path = directory / local_part
    previous = int(path.stat().st_mtime) if path.exists() else None
    _replace_file(path, f"{address}:{hash_password(password)}::::::\n")
    if previous is not None:
        _publish_change(path, previous)


def _publish_change(path: Path, previous_mtime: int) -> None:
    """Make Dovecot see a rewritten passwd-file at its next lookup.

    Dovecot reloads a file only when its size or whole-second mtime changed, and
    checks at most once per second: give the file a new mtime, then let the
    current second pass. Only password resets pay this (under a second).
    """
    now = time.time()
    mtime = max(int(now), previous_mtime + 1)
    os.utime(path, (mtime, mtime))
    time.sleep(math.ceil(now) - now + 0.01)


def prepare_users_dir(users_dir: Path) -> None:
    """Create the passwd-file directory, readable by Dovecot's auth process only."""
    _make_private_dir(users_dir)


def _make_private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o750, exist_ok=True)
    os.chown(directory, 0, _internal_gid())
    os.chmod(directory, 0o750)  # noqa: S103 - group dovecot reads the passwd-files


def _replace_file(path: Path, text: str) -> None:
    """Atomically replace ``path``: root-owned, group ``dovecot``, mode 0640."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chown(temporary, 0, _internal_gid())
    os.replace(temporary, path)


def _internal_gid() -> int:
    return pwd.getpwnam(INTERNAL_USER).pw_gid


def doveadm(config_file: Path, *args: str, stdin: bytes | None = None) -> str:
    """Run ``doveadm -c config_file args...`` and return its standard output."""
    binary = find_binary("doveadm") or "doveadm"
    result = subprocess.run(
        [binary, "-c", str(config_file), *args],
        input=stdin,
        capture_output=True,
        timeout=_DOVEADM_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise DoveadmError(
            f"doveadm {' '.join(args)} exited {result.returncode}: "
            f"{result.stderr.decode(errors='replace').strip()}"
        )
    return result.stdout.decode(errors="replace")


def kick(config_file: Path, address: str) -> None:
    """Disconnect every session of ``address`` (none logged in is fine)."""
    with contextlib.suppress(DoveadmError):  # doveadm answers "no users" with a failure code
        doveadm(config_file, "kick", address)


def ensure_folder(config_file: Path, address: str, folder: str) -> None:
    """Create and subscribe ``folder`` unless it exists already."""
    if folder.upper() == "INBOX":
        return
    listed = doveadm(config_file, "mailbox", "list", "-u", address).splitlines()
    if folder not in listed:
        doveadm(config_file, "mailbox", "create", "-s", "-u", address, folder)


def save_message(
    config_file: Path, address: str, folder: str, message: bytes, message_id: str, seen: bool
) -> None:
    """Store ``message`` in ``folder`` through Dovecot itself, flagged \\Seen on request."""
    ensure_folder(config_file, address, folder)
    doveadm(config_file, "save", "-u", address, "-m", folder, stdin=message)
    if seen:
        doveadm(
            config_file,
            "flags",
            "add",
            "-u",
            address,
            "\\Seen",
            "mailbox",
            folder,
            "header",
            "Message-ID",
            message_id,
        )


def count_messages(config_file: Path, address: str, folder: str) -> int:
    """Number of messages in ``folder`` as Dovecot sees it."""
    output = doveadm(
        config_file, "-f", "flow", "mailbox", "status", "-u", address, "messages", folder
    )
    match = _MESSAGES.search(output)
    if match is None:
        raise DoveadmError(f"unexpected doveadm mailbox status output: {output!r}")
    return int(match.group(1))


def seen_uids(config_file: Path, address: str, folder: str) -> set[int]:
    """The UIDs of ``folder`` flagged ``\\Seen``, as Dovecot sees them."""
    output = doveadm(config_file, "search", "-u", address, "mailbox", folder, "SEEN")
    return {int(line.split()[1]) for line in output.splitlines() if len(line.split()) == 2}


def idle_users(instance_name: str) -> set[str]:
    """Users with an IMAP session in IDLE now, read from the imap processes' titles, which
    ``verbose_proctitle`` makes ``dovecot-<instance>/imap [user ip IDLE]``: Dovecot's own view of
    who is waiting for mail, without a connection of its own to ask."""
    prefix = f"dovecot-{instance_name}/imap ["
    users: set[str] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            title = Path(entry.path, "cmdline").read_bytes().decode(errors="replace")
            words = title[len(prefix) :].strip("\0 ]").split()  # user, address, command
            if title.startswith(prefix) and "IDLE" in words[2:]:
                users.add(words[0])
    return users


def probe(host: str, ports: DovecotPorts, context: ssl.SSLContext, timeout: float) -> None:
    """Raise unless IMAP answers over verified TLS and the LMTP and auth ports accept."""
    with (
        socket.create_connection((host, ports.imaps), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        greeting = tls.recv(512)
        tls.sendall(b"probe LOGOUT\r\n")
    if not greeting.startswith(b"* OK"):
        raise ConnectionError(f"unexpected IMAP greeting {greeting!r}")
    with socket.create_connection((host, ports.lmtp), timeout=timeout) as lmtp:
        banner = lmtp.recv(512)
        lmtp.sendall(b"QUIT\r\n")
    if not banner.startswith(b"220"):
        raise ConnectionError(f"unexpected LMTP banner {banner!r}")
    socket.create_connection((host, ports.auth), timeout=timeout).close()

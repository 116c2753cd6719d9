"""deploy/dev-mail (compose's development mailbox) configures the same mail stack as the devstack's
templates (``make run`` and the tests): every setting matches, or is named here with the reason.

The templates are rendered with the compose deployment's values (its domain, ports, certificate
paths and mail user), so only the differences the two deployments need remain. Comments and blank
lines are ignored; a setting is compared by its key (Dovecot: its section path, ``a/b/key``;
master.cf: ``service type/column`` and ``service type/-o name``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailbridge.devstack import dovecot, postfix
from mailbridge.devstack.certs import CertificatePaths

ROOT = Path(__file__).resolve().parents[2]
DEV_MAIL = ROOT / "deploy" / "dev-mail"
ENTRYPOINT = (DEV_MAIL / "entrypoint.sh").read_text(encoding="utf-8")
DOCKERFILE = (DEV_MAIL / "Dockerfile").read_text(encoding="utf-8")
IMAPS, SUBMISSION, SUBMISSIONS = 993, 587, 465

# Why the two may differ. A key ending in "/" names a whole section.
LOOPBACK = (
    "devstack listens on 127.0.0.1 only; dev-mail on every interface, for the other containers"
)
OWN_DIRS = (
    "devstack runs beside the host's own servers, in its own directories; dev-mail uses Debian's"
)
LOGS = "devstack logs to files under its data directory; dev-mail to the container's stdout/stderr"
SOCKETS = (
    "Postfix reaches Dovecot's LMTP and auth over loopback TCP on free ports in devstack (several "
    "stacks per host), over unix sockets in Postfix's queue directory in dev-mail (one container)"
)
SIZED = (
    "sized for the exactly-once test (3 workers, 50 accounts); dev-mail keeps the default limits"
)
FAIL_FAST = (
    "the tests fail logins on purpose and want the answer at once; dev-mail keeps the penalty"
)
SYSLOG = "devstack's log lines say postfix-mailbridge, to tell them from a host's own Postfix"

DOVECOT_DIFFERENCES = {
    "instance_name": OWN_DIRS,
    "base_dir": OWN_DIRS,
    "state_dir": OWN_DIRS,
    "listen": LOOPBACK,
    "service imap-login/inet_listener imaps/address": LOOPBACK,
    "info_log_path": LOGS,
    "ssl_dh": "any mail client may open dev-mail: Debian's dh.pem adds DHE; mailbridge uses ECDHE",
    "postmaster_address": "Dovecot's default, postmaster@<recipient's domain>, follows DEV_MAIL_DOMAIN",
    "passdb/args": "devstack: a passwd-file per user (seen at the next lookup); dev-mail: one demo user",
    "default_process_limit": SIZED,
    "default_client_limit": SIZED,
    "protocol imap/mail_max_userip_connections": SIZED,
    "auth_failure_delay": FAIL_FAST,
    "service anvil/": FAIL_FAST,
    "service lmtp/": SOCKETS,
    "service auth/": SOCKETS,
}
MAIN_CF_DIFFERENCES = {
    "queue_directory": OWN_DIRS,
    "data_directory": OWN_DIRS,
    "maillog_file_prefixes": LOGS + " (/dev/stdout is among Postfix's default prefixes)",
    "syslog_name": SYSLOG,
    "inet_interfaces": LOOPBACK,
    "default_process_limit": SIZED,
    "smtpd_banner": "dev-mail tells whoever connects that it is for development only",
    "default_transport": "the discard reason is log text naming the server",
    "virtual_transport": SOCKETS,
    "smtpd_sasl_path": SOCKETS,
}
MASTER_CF_DIFFERENCES = {
    f"{SUBMISSION} inet/address": LOOPBACK,
    f"{SUBMISSIONS} inet/address": LOOPBACK,
    f"{SUBMISSION} inet/-o syslog_name": SYSLOG,
    f"{SUBMISSIONS} inet/-o syslog_name": SYSLOG,
}


def _shell_value(name: str) -> str:
    """``name=value`` as assigned in entrypoint.sh."""
    found = re.search(rf"^{name}=(\S+)$", ENTRYPOINT, re.MULTILINE)
    assert found, f"entrypoint.sh assigns no {name}"
    return found.group(1)


def _compose_dev_mail() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    service: dict[str, Any] = compose["services"]["dev-mail"]
    return service


def _vmail_id() -> int:
    found = re.search(r"useradd --uid (\d+)", DOCKERFILE)
    assert found, "deploy/dev-mail/Dockerfile creates no mail user with a fixed uid"
    return int(found.group(1))


DOMAIN = _compose_dev_mail()["environment"]["DEV_MAIL_DOMAIN"]
CERTS = CertificatePaths(
    ca_file=Path(_shell_value("cert")),  # self-signed, its own CA; no template names the CA
    cert_file=Path(_shell_value("cert")),
    key_file=Path(_shell_value("key")),
)
VMAIL = dovecot.MailUser(name="vmail", uid=_vmail_id(), gid=_vmail_id())
# LMTP and auth ports: dev-mail uses unix sockets instead (SOCKETS), so any number will do.
DOVECOT_PORTS = dovecot.DovecotPorts(imaps=IMAPS, lmtp=24, auth=12345)
POSTFIX_PORTS = postfix.PostfixPorts(
    submission=SUBMISSION, submissions=SUBMISSIONS, dovecot_auth=12345, dovecot_lmtp=24
)


def _dovecot_conf(domain: str = DOMAIN) -> str:
    layout = dovecot.DovecotLayout(
        root=Path("/etc/dovecot"),
        mail_root=Path("/var/mail/vmail"),
        log_file=Path("/dev/stderr"),
        base_dir=Path("/run/dovecot"),
    )
    return dovecot.render_config(layout, DOVECOT_PORTS, CERTS, VMAIL, domain)


def _main_cf(domain: str = DOMAIN) -> str:
    layout = postfix.PostfixLayout(
        root=Path("/etc/postfix"),
        log_file=Path("/dev/stdout"),
        queue_dir=Path("/var/spool/postfix"),
    )
    return postfix.render_main_cf(layout, POSTFIX_PORTS, CERTS, domain)


def _settings(text: str) -> list[str]:
    """Lines that say something: no comments, no blank lines, surrounding whitespace kept."""
    lines = (line.rstrip() for line in text.splitlines())
    return [line for line in lines if line and not line.lstrip().startswith("#")]


def _put(settings: dict[str, str], key: str, value: str) -> None:
    assert key not in settings, f"{key} is set twice"
    settings[key] = value


def parse_dovecot(text: str) -> dict[str, str]:
    """``section/sub/key`` -> value."""
    settings: dict[str, str] = {}
    sections: list[str] = []
    for line in (line.strip() for line in _settings(text)):
        if line.endswith("{"):
            sections.append(line.removesuffix("{").strip())
        elif line == "}":
            sections.pop()
        else:
            key, equals, value = line.partition("=")
            assert equals, f"not a setting: {line!r}"
            _put(settings, "/".join([*sections, key.strip()]), value.strip())
    assert not sections, f"unclosed sections {sections}"
    return settings


def parse_main_cf(text: str) -> dict[str, str]:
    """key -> value, continuation lines joined."""
    settings: dict[str, str] = {}
    key = ""
    for line in _settings(text):
        if line[0].isspace():
            settings[key] += " " + line.strip()
            continue
        key, equals, value = (part.strip() for part in line.partition("="))
        assert equals, f"not a setting: {line!r}"
        _put(settings, key, value)
    return settings


MASTER_COLUMNS = ("private", "unpriv", "chroot", "wakeup", "maxproc")


def parse_master_cf(text: str) -> dict[str, str]:
    """``service type/column`` and ``service type/-o name`` -> value; an inet service's listen
    address (``host:`` before its port) is its ``address`` column."""
    settings: dict[str, str] = {}
    entry = ""
    for line in _settings(text):
        if line[0].isspace():
            tokens = line.split()
            assert tokens[0::2] == ["-o"] * (len(tokens) // 2), f"not -o options: {line!r}"
            for option in tokens[1::2]:
                name, _, value = option.partition("=")
                _put(settings, f"{entry}/-o {name}", value)
            continue
        service, kind, *columns = line.split()
        address, _, name = service.rpartition(":")
        entry = f"{name} {kind}"
        if kind == "inet":
            _put(settings, f"{entry}/address", address)
        for column, value in zip(MASTER_COLUMNS, columns, strict=False):
            _put(settings, f"{entry}/{column}", value)
        _put(settings, f"{entry}/command", " ".join(columns[len(MASTER_COLUMNS) :]))
    return settings


def _differing(devstack: dict[str, str], dev_mail: dict[str, str]) -> set[str]:
    keys = devstack.keys() | dev_mail.keys()
    return {key for key in keys if devstack.get(key) != dev_mail.get(key)}


def _covered(key: str, allowed: Iterable[str]) -> bool:
    return any(key == name or (name.endswith("/") and key.startswith(name)) for name in allowed)


CASES = {
    "dovecot.conf": (_dovecot_conf(), parse_dovecot, DOVECOT_DIFFERENCES),
    "main.cf": (_main_cf(), parse_main_cf, MAIN_CF_DIFFERENCES),
    "master.cf": (postfix.render_master_cf(POSTFIX_PORTS), parse_master_cf, MASTER_CF_DIFFERENCES),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dev_mail_sets_what_the_devstack_sets_except_the_named_differences(name: str) -> None:
    rendered, parse, allowed = CASES[name]
    devstack = parse(rendered)
    dev_mail = parse((DEV_MAIL / name).read_text(encoding="utf-8"))

    differing = _differing(devstack, dev_mail)
    drifted = {
        key: (devstack.get(key, "<unset>"), dev_mail.get(key, "<unset>"))
        for key in sorted(differing)
        if not _covered(key, allowed)
    }
    stale = [named for named in allowed if not any(_covered(key, [named]) for key in differing)]

    assert not drifted, (
        f"deploy/dev-mail/{name} and the devstack template differ, (devstack, dev-mail): {drifted}; "
        "make them agree, or name the key and why in this test"
    )
    assert not stale, f"these no longer differ in {name}: remove them from the list: {stale}"


def test_the_entrypoint_rewrites_every_domain_setting_as_the_template_would() -> None:
    # The keys whose template value follows the domain: compose's DEV_MAIL_DOMAIN must reach each.
    as_shell = parse_main_cf(_main_cf("${domain}"))
    as_compose = parse_main_cf(_main_cf())
    expected = {
        key: value
        for key, value in as_shell.items()
        if value != as_compose[key] and key not in MAIN_CF_DIFFERENCES
    }
    commands = re.findall(r"^postconf -e (.+)$", ENTRYPOINT, re.MULTILINE)
    rewritten = dict(arg.split("=", 1) for command in commands for arg in shlex.split(command))

    assert rewritten == expected, "entrypoint.sh's postconf -e must set what the template would"


def test_no_dovecot_setting_follows_the_domain_unless_its_difference_is_named() -> None:
    # dev-mail's entrypoint rewrites no Dovecot setting, so none may depend on the domain.
    other = parse_dovecot(_dovecot_conf("other.test"))
    follows_domain = {
        key for key, value in parse_dovecot(_dovecot_conf()).items() if other[key] != value
    }

    unnamed = [key for key in follows_domain if not _covered(key, DOVECOT_DIFFERENCES)]
    assert not unnamed, (
        f"dovecot.conf settings that follow the domain, fixed in dev-mail: {unnamed}"
    )


def test_compose_publishes_the_ports_the_configuration_listens_on() -> None:
    published = {int(str(port).rpartition(":")[2]) for port in _compose_dev_mail()["ports"]}
    exposed = {int(port) for port in re.findall(r"^EXPOSE (.+)$", DOCKERFILE, re.M)[0].split()}

    assert published == exposed == {IMAPS, SUBMISSION, SUBMISSIONS}

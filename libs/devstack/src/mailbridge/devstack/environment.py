"""The settings each service is started with, from the infrastructure's addresses.

Used by ``make run`` and by the end-to-end tests, so both run the services exactly alike.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mailbridge.devstack.mailstack import DOMAIN, authserv_id
from mailbridge.devstack.processes import free_ports
from mailbridge.devstack.supervisor import ServiceProcess

HOST = "127.0.0.1"
TEST_TIMEOUT_SECONDS = 20.0  # how long config-api waits for a connection test's answer
POLL_INTERVAL_SECONDS = 15.0  # how often config-api schedules a poll of a connected mailbox
# The receiving server of the local mail stack (its Postfix's host name): the one server whose
# Authentication-Results the worker believes when it screens a message.
TRUSTED_AUTHSERV_ID = authserv_id(DOMAIN)


@dataclass(frozen=True)
class Infrastructure:
    nats_url: str  # one server, or a cluster's comma-separated (``NatsCluster.urls``)
    database_url: str
    sealing_keys: str
    ca_file: Path | None = None
    log_level: str = "INFO"
    providers: Mapping[str, str] = field(default_factory=dict)  # MAILBRIDGE_* of a sandbox
    dns_resolver: str | None = None  # "host:port" for config-api's settings detection
    trusted_authserv_id: str = TRUSTED_AUTHSERV_ID
    stream_replicas: int = 1  # copies of each stream and bucket: 3 on a ``NatsCluster``


def services(
    infra: Infrastructure,
    *,
    http_port: int,
    test_timeout: float = TEST_TIMEOUT_SECONDS,
    poll_interval: float = POLL_INTERVAL_SECONDS,
) -> list[ServiceProcess]:
    """The four services on loopback, each with a readiness URL to wait on."""
    common = {
        "MAILBRIDGE_NATS_URL": infra.nats_url,
        "MAILBRIDGE_STREAM_REPLICAS": str(infra.stream_replicas),
        "MAILBRIDGE_LOG_LEVEL": infra.log_level,
    }
    public = {"MAILBRIDGE_PUBLIC_BASE_URL": f"http://{HOST}:{http_port}"}
    oauth = {**public, **infra.providers}  # where Microsoft and Google are: a sandbox, or the real
    database = {
        "MAILBRIDGE_DATABASE_URL": infra.database_url,
        "MAILBRIDGE_SEALING_KEYS": infra.sealing_keys,
    }
    worker = {
        **common,
        "MAILBRIDGE_ALLOW_PRIVATE_HOSTS": "true",
        "MAILBRIDGE_WATCH_QUIET_SECONDS": str(poll_interval),  # a watched mailbox's safety net
        "MAILBRIDGE_TRUSTED_AUTHSERV_ID": infra.trusted_authserv_id,
        **infra.providers,
    }
    if infra.ca_file is not None:
        worker["MAILBRIDGE_TLS_CA_FILE"] = str(infra.ca_file)
    api = {
        **public,
        "MAILBRIDGE_HTTP_HOST": HOST,
        "MAILBRIDGE_HTTP_PORT": str(http_port),
        "MAILBRIDGE_TEST_TIMEOUT_SECONDS": str(test_timeout),
        "MAILBRIDGE_POLL_INTERVAL_SECONDS": str(poll_interval),
        "MAILBRIDGE_POLL_TICK_SECONDS": str(min(poll_interval, 5.0)),
    }
    if infra.dns_resolver is not None:
        api["MAILBRIDGE_DNS_RESOLVER"] = infra.dns_resolver
    broker = {**common, **database, **oauth}
    policy_port, broker_port, worker_port = _health_ports(besides=http_port)
    return [
        ServiceProcess("config-api", "mailbridge.config_api", {**common, **database, **api},
                       f"http://{HOST}:{http_port}/readyz"),
        _with_health_port("policy", "mailbridge.policy", {**common, **database}, policy_port),
        _with_health_port("oauth-broker", "mailbridge.oauth_broker", broker, broker_port),
        _with_health_port("mail-worker", "mailbridge.mail_worker", worker, worker_port),
    ]  # fmt: skip


def _health_ports(besides: int) -> list[int]:
    """Three ports, distinct from each other and from config-api's: picked one at a time, two
    picks could return the same just-freed port, and a health server then answered config-api's
    URL (its /readyz said ready, every other route 404)."""
    return [port for port in free_ports(4) if port != besides][:3]


def _with_health_port(name: str, module: str, env: dict[str, str], port: int) -> ServiceProcess:
    health = {"MAILBRIDGE_HEALTH_HOST": HOST, "MAILBRIDGE_HEALTH_PORT": str(port)}
    return ServiceProcess(name, module, {**env, **health}, f"http://{HOST}:{port}/readyz")


def create_api_key(config_api: ServiceProcess, *scope: str) -> str:
    """A new API key through config-api's own command (``--operator`` or ``--org ORG``)."""
    created = subprocess.run(
        [sys.executable, "-m", config_api.module, "keys", "create", *scope, "--name", "devstack"],
        env={**os.environ, **config_api.env}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return created.stdout.rsplit("(shown once): ", 1)[1].strip()

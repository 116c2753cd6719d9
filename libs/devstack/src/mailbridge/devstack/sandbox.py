"""The sandbox OAuth provider as a process on loopback, and a client for its admin levers.

``with SandboxProvider(directory) as sandbox:`` starts ``python -m mailbridge.sandbox`` over TLS
with a CA of its own, and ``sandbox.settings()`` points mailbridge at it.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from mailbridge.devstack.certs import client_ssl_context, issue_certificates
from mailbridge.devstack.processes import stop_process

_START_TIMEOUT_SECONDS = 30.0


class SandboxAdmin:
    """The sandbox's ``/_sandbox/`` API, synchronously."""

    def __init__(self, base_url: str, ca_file: Path) -> None:
        self._http = httpx.Client(
            base_url=f"{base_url}/_sandbox", verify=client_ssl_context(ca_file), timeout=10.0
        )

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self._http.post(path, json={k: v for k, v in body.items() if v is not None})
        response.raise_for_status()
        return response.json()

    def register_client(
        self,
        provider: str,
        client_id: str,
        client_secret: str,
        redirect_uris: list[str],
        *,
        secret_expired: bool = False,
    ) -> None:
        body = {"provider": provider, "client_id": client_id, "client_secret": client_secret}
        self._post(
            "/clients", body | {"redirect_uris": redirect_uris, "secret_expired": secret_expired}
        )

    def add_user(
        self,
        provider: str,
        email: str,
        *,
        upn: str | None = None,
        mail: str | None = None,
        inbox_total: int = 0,
        unread: int = 0,
    ) -> None:
        body = {"provider": provider, "email": email, "upn": upn, "mail": mail}
        self._post("/users", body | {"inbox_total": inbox_total, "unread": unread})

    def fail(
        self,
        provider: str,
        endpoint: str,
        kind: str,
        *,
        times: int | None = None,
        delay_seconds: float | None = None,
        scope: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Switch a failure on; ``times=None`` keeps it until ``clear_failures``.

        ``endpoint``: authorize, code_exchange, refresh, revoke, api (the connection test's
        calls, and every mail call too), send (messages.send, sendMail) or sync (every mail
        read). ``retry_after`` is the ``Retry-After`` seconds of a 429 or 503."""
        body: dict[str, Any] = {"provider": provider, "endpoint": endpoint, "kind": kind}
        body |= {
            "times": times,
            "delay_seconds": delay_seconds,
            "scope": scope,
            "retry_after": retry_after,
        }
        self._post("/failures", body)

    def throttle(
        self, provider: str, endpoint: str = "api", *, retry_after: int = 1, times: int | None = 1
    ) -> None:
        """The next ``times`` calls to ``endpoint`` answer 429 with ``Retry-After``."""
        self.fail(provider, endpoint, "429", times=times, retry_after=retry_after)

    def expire_cursors(self, provider: str) -> None:
        """At the next mail read, every history id and delta token issued so far goes stale:
        history answers 404, a delta link 410."""
        self.fail(provider, "sync", "expired_cursor", times=1)

    def drop_after_send(self, provider: str, times: int = 1) -> None:
        """The next ``times`` sends are carried out, then the connection drops unanswered."""
        self.fail(provider, "send", "drop_after_read", times=times)

    def clear_failures(self) -> None:
        self._http.delete("/failures").raise_for_status()

    def counters(self) -> dict[str, dict[str, int]]:
        response = self._http.get("/counters")
        response.raise_for_status()
        counters: dict[str, dict[str, int]] = response.json()
        return counters

    def reset_counters(self) -> None:
        self._post("/counters/reset", {})

    def revoke_user(self, provider: str, email: str) -> None:
        self._post("/revoke-user", {"provider": provider, "email": email})

    def grant(self, provider: str, email: str, client_id: str | None = None) -> dict[str, Any]:
        """What ``email`` granted (``client_id``, or the first client): scopes, latest refresh."""
        response = self._http.get("/grants", params={"provider": provider, "email": email})
        response.raise_for_status()
        grants: list[dict[str, Any]] = response.json()["grants"]
        for found in grants:
            if client_id is None or found["client_id"] == client_id:
                return found
        raise LookupError(f"{email} granted nothing at {provider} to {client_id or 'any client'}")

    def secrets(self, provider: str) -> list[tuple[str, str]]:
        """(kind, value) of every code, PKCE verifier and token the provider issued or received."""
        response = self._http.get("/secrets", params={"provider": provider})
        response.raise_for_status()
        return [(found["kind"], found["value"]) for found in response.json()["secrets"]]

    def set_token_lifetime(self, provider: str, seconds: int) -> None:
        self._post("/settings", {"provider": provider, "access_token_lifetime": seconds})

    def revoke_used_refresh_tokens(self, provider: str, revoke: bool = True) -> None:
        self._post("/settings", {"provider": provider, "revoke_used_refresh_tokens": revoke})

    def set_max_json_send_bytes(self, provider: str, size: int) -> None:
        """Gmail's limit on a JSON ``messages.send`` body (5 MiB unless set)."""
        self._post("/settings", {"provider": provider, "max_json_send_bytes": size})

    def deliver(
        self,
        provider: str,
        email: str,
        *,
        raw: bytes | None = None,
        sender: str | None = None,
        subject: str | None = None,
        text: str | None = None,
        message_id: str | None = None,
        in_reply_to: str | None = None,
    ) -> str:
        """Mail from outside into ``email``'s inbox, unread: ``raw`` as it is, else a message
        built from the fields. The provider's id of the message."""
        body: dict[str, Any] = {"provider": provider, "email": email, "from": sender}
        body |= {
            "subject": subject,
            "text": text,
            "message_id": message_id,
            "in_reply_to": in_reply_to,
        }
        if raw is not None:
            body["raw"] = base64.b64encode(raw).decode()
        delivered: dict[str, str] = self._post("/mail/deliver", body)
        return delivered["id"]

    def mailbox(self, provider: str, email: str, folder: str = "inbox") -> list[dict[str, Any]]:
        """The messages of ``folder`` (inbox or sent): ids, headers, labels or is_read, and
        ``raw_b64``, the stored bytes."""
        params = {"provider": provider, "email": email, "folder": folder}
        found: list[dict[str, Any]] = self._get("/mail", params)
        return found

    def requests(self, provider: str) -> list[dict[str, Any]]:
        """Every mail-API request since the last reset: at, method, path, status, email."""
        found: list[dict[str, Any]] = self._get("/requests", {"provider": provider})
        return found

    def concurrency(self, provider: str, email: str) -> int:
        """The most mail-API requests of ``email`` in flight at once since the last reset."""
        found: dict[str, int] = self._get("/concurrency", {"provider": provider, "email": email})
        return found["max_in_flight"]

    def reset_requests(self) -> None:
        self._post("/requests/reset", {})

    def _get(self, path: str, params: dict[str, str]) -> Any:
        response = self._http.get(path, params=params)
        response.raise_for_status()
        return response.json()


class SandboxProvider:
    """``python -m mailbridge.sandbox`` on 127.0.0.1 with a fresh CA, for as long as the block."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._admin: SandboxAdmin | None = None
        self.ca_file = directory / "tls" / "ca.pem"

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the sandbox provider is not started")
        return f"https://127.0.0.1:{self._port}"

    @property
    def admin(self) -> SandboxAdmin:
        if self._admin is None:
            self._admin = SandboxAdmin(self.base_url, self.ca_file)
        return self._admin

    @property
    def log_file(self) -> Path:
        return self.directory / "sandbox.log"

    def start(self) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        paths = issue_certificates(self.directory / "tls")
        ports_file = self.directory / "port"
        ports_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "mailbridge.sandbox", "--host", "127.0.0.1"]
        command += ["--port", "0", "--ports-file", str(ports_file)]
        command += ["--certfile", str(paths.cert_file), "--keyfile", str(paths.key_file)]
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._port = self._wait_for_port(ports_file)
        self._wait_until_answering()
        return self.base_url

    def _wait_for_port(self, ports_file: Path) -> int:
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self._fail_if_exited()
            text = ports_file.read_text().strip() if ports_file.exists() else ""
            if text:
                return int(text)
            time.sleep(0.05)
        raise RuntimeError(f"the sandbox provider wrote no port{self._log_tail()}")

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self._fail_if_exited()
            try:
                self.admin.counters()
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"the sandbox provider does not answer{self._log_tail()}")

    def _fail_if_exited(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            code = self._process.returncode
            raise RuntimeError(f"the sandbox provider exited with {code}{self._log_tail()}")

    def _log_tail(self) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n" + "\n".join(text.splitlines()[-30:])

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._process is not None:
            stop_process(self._process)
            self._process = None

    def settings(self) -> dict[str, str]:
        """The ``MAILBRIDGE_*`` variables that point mailbridge at this sandbox."""
        base = self.base_url
        google = f"{base}/google"
        return {
            "MAILBRIDGE_MICROSOFT_AUTHORITY": f"{base}/microsoft",
            "MAILBRIDGE_GOOGLE_AUTHORIZATION_URL": f"{google}/o/oauth2/v2/auth",
            "MAILBRIDGE_GOOGLE_TOKEN_URL": f"{google}/token",
            "MAILBRIDGE_GOOGLE_REVOCATION_URL": f"{google}/revoke",
            "MAILBRIDGE_GOOGLE_USERINFO_URL": f"{google}/v1/userinfo",
            "MAILBRIDGE_GOOGLE_DISCOVERY_URL": f"{google}/.well-known/openid-configuration",
            "MAILBRIDGE_GMAIL_API_URL": f"{base}/gmail",
            "MAILBRIDGE_GRAPH_API_URL": f"{base}/graph/v1.0",
            "MAILBRIDGE_OAUTH_CA_FILE": str(self.ca_file),
        }

    def __enter__(self) -> SandboxProvider:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

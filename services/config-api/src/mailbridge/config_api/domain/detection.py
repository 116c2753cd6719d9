"""Settings detection: what one source found for a domain, and the answer shown for an address.

The sources, in the order they are believed (``handlers/detection.py`` asks them in it):

1. ``preset``: the domain is a known provider's own (``gmail.com``);
2. ``mx``: the domain's most preferred MX host that names a provider (``*.google.com``);
3. ``autoconfig``: the domain publishes a Mozilla-style document (``domain/autoconfig.py``);
4. ``srv``: the domain's RFC 6186 / RFC 8314 SRV records name its servers.

A ``Finding`` belongs to the domain, so one is cached for every address at it: its user name is a
template (``%EMAILLOCALPART%``), rendered for each address by ``for_address``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from mailbridge.config_api.domain.email_config import ServerSettings
from mailbridge.shared.messages import ServerEndpoint
from mailbridge.shared.presets import Preset, preset_for_mx

Source = Literal["preset", "mx", "autoconfig", "srv", "none"]
OAuthProvider = Literal["microsoft", "google"]
_OAUTH: dict[str, OAuthProvider] = {"microsoft": "microsoft", "google": "google"}
EMAIL_ADDRESS = "%EMAILADDRESS%"
MAX_USERNAME = 320  # what a save body takes


class DomainMissing(Exception):
    """DNS says the domain does not exist (NXDOMAIN): nothing under it can either."""


class DnsUnavailable(Exception):
    """The resolver did not answer in time, or failed: no answer about the domain at all."""


class DetectedSettings(BaseModel):
    """The IMAP/SMTP settings found for an address: what a save body takes, and where from.
    Every field is always answered, null where nothing was found."""

    email: str = Field(description="the address, as normalized", examples=["support@acme.com"])
    source: Source = Field(description="which source answered; `none` when none did")
    preset: str | None = Field(
        default=None, description="the fitting preset's id (`GET /bridge/email-presets`)"
    )
    imap: ServerSettings | None = None
    smtp: ServerSettings | None = None
    username: str | None = Field(default=None, description="the user name to sign in with")
    suggest_oauth: OAuthProvider | None = Field(
        default=None,
        description="the OAuth method to offer first: its provider refuses or discourages "
        "passwords",
    )
    notes: list[str] = Field(description="for the person choosing: why, and what to watch for")


@dataclass(frozen=True)
class ServiceRecord:
    """One SRV record (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Finding:
    source: Source
    imap: ServerSettings | None = None
    smtp: ServerSettings | None = None
    username: str = EMAIL_ADDRESS  # a template of autoconfig's placeholders
    preset: str | None = None
    suggest_oauth: OAuthProvider | None = None
    notes: tuple[str, ...] = ()

    def for_address(self, address: str) -> DetectedSettings:
        found = self.imap is not None or self.smtp is not None
        return DetectedSettings(
            email=address,
            source=self.source,
            preset=self.preset,
            imap=self.imap,
            smtp=self.smtp,
            username=render_username(self.username, address) if found else None,
            suggest_oauth=self.suggest_oauth,
            notes=list(self.notes),
        )


def render_username(template: str, address: str) -> str:
    """Autoconfig's placeholders filled in for ``address`` (the address itself when that would be
    longer than a save body takes)."""
    local_part, _, domain = address.rpartition("@")
    rendered = (
        template.replace(EMAIL_ADDRESS, address)
        .replace("%EMAILLOCALPART%", local_part)
        .replace("%EMAILDOMAIN%", domain)
    )
    return rendered if len(rendered) <= MAX_USERNAME else address


def server(host: str, port: int | str, security: str) -> ServerSettings | None:
    """Settings a save body would take, or None when a source's values are not such settings."""
    try:
        return ServerSettings.model_validate(
            {"host": host.rstrip("."), "port": port, "security": security}
        )
    except ValidationError:
        return None


def _from_endpoint(endpoint: ServerEndpoint | None) -> ServerSettings | None:
    return server(endpoint.host, endpoint.port, endpoint.security) if endpoint else None


def from_preset(preset: Preset, source: Source = "preset", *notes: str) -> Finding:
    return Finding(
        source,
        imap=_from_endpoint(preset.imap),
        smtp=_from_endpoint(preset.smtp),
        preset=preset.id,
        suggest_oauth=_OAUTH.get(preset.oauth_alternative or ""),
        notes=(*notes, *(note for note in (preset.warning, preset.note) if note)),
    )


def from_mx(domain: str, hosts: list[str]) -> Finding | None:
    """The provider of the most preferred MX host that names one (``hosts`` in preference order)."""
    for host in hosts:
        if (preset := preset_for_mx(host)) is not None:
            return hosted_by(preset, domain)
    return None


def hosted_by(preset: Preset, domain: str) -> Finding:
    return from_preset(preset, "mx", f"Mail for {domain} is hosted by {preset.name}.")


# RFC 6186 and RFC 8314 §5.1: at equal priority, implicit TLS before STARTTLS
SRV_SERVICES = {
    "imap": (("_imaps._tcp", "ssl"), ("_imap._tcp", "starttls")),
    "smtp": (("_submissions._tcp", "ssl"), ("_submission._tcp", "starttls")),
}
SRV_NOTE = "Servers named by the domain's DNS (SRV records); the user name is a guess: the address."


def from_srv(answers: dict[str, list[ServiceRecord]]) -> Finding | None:
    """The servers the SRV records of ``SRV_SERVICES`` name (``answers`` by label)."""
    imap, smtp = (_best_service(answers, protocol) for protocol in ("imap", "smtp"))
    if imap is None and smtp is None:
        return None
    return Finding("srv", imap=imap, smtp=smtp, notes=(SRV_NOTE,))


def _best_service(answers: dict[str, list[ServiceRecord]], protocol: str) -> ServerSettings | None:
    """The lowest priority, then implicit TLS, then the heaviest weight (a suggestion picks one
    where a client would pick at random by weight). A label answering only "." offers nothing."""
    offered = [
        (record.priority, rank, -record.weight, settings)
        for rank, (label, security) in enumerate(SRV_SERVICES[protocol])
        if not _not_offered(records := answers.get(label, []))
        for record in records
        if (settings := server(record.target, record.port, security)) is not None
    ]
    return min(offered, key=lambda entry: entry[:3])[3] if offered else None


def _not_offered(records: list[ServiceRecord]) -> bool:
    return any(record.target in (".", "") for record in records)


def nothing_found(domain: str) -> Finding:
    return Finding("none", notes=(f"No settings found for {domain}: pick a preset or enter them.",))


def no_such_domain(domain: str) -> Finding:
    return Finding("none", notes=(f"The domain {domain} does not exist (DNS).",))


def unanswered(domain: str) -> Finding:
    return Finding("none", notes=(f"Looking up {domain} took too long: try again, or enter them.",))

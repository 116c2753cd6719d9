"""What config-api's routes take: one ``Annotated`` alias per port of the container, the caller,
and the path and header parameters shared by several routes.

A route names the ports it uses (``repo: RepoDep, policy: PolicyDep``), so mypy keeps it from
reaching an adapter, and a test builds the container of fakes it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.routing import APIRoute
from pydantic import WithJsonSchema

from mailbridge.config_api.container import Container
from mailbridge.config_api.domain.oauth import FLOW_ID_PATTERN
from mailbridge.config_api.domain.outgoing import MAX_REQUEST_BYTES
from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import Caller, CallerOrSession
from mailbridge.config_api.ports import (
    AgentTokenStore,
    Approvals,
    AuditLog,
    CommandPublisher,
    ConfigRepository,
    DetectionCache,
    DetectionSources,
    GrantRevoker,
    LiveFeed,
    MailReader,
    OAuthBroker,
    PolicyService,
    SendLedger,
    TestResults,
    UiSessionStore,
)
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.clock import Clock
from mailbridge.shared.content import ContentStore
from mailbridge.shared.crypto import Sealer
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.health import ReadinessCheck

__all__ = ["Caller", "CallerOrSession"]


async def container(request: Request) -> Container:  # async: no threadpool hop per request
    found: Container = request.app.state.container
    return found


ContainerDep = Annotated[Container, Depends(container)]


async def _repo(c: ContainerDep) -> ConfigRepository:
    return c.repo


async def _ledger(c: ContainerDep) -> SendLedger:
    return c.ledger


async def _approvals(c: ContainerDep) -> Approvals:
    return c.approvals


async def _content(c: ContainerDep) -> ContentStore:
    return c.content


async def _policy(c: ContainerDep) -> PolicyService:
    return c.policy


async def _commands(c: ContainerDep) -> CommandPublisher:
    return c.commands


async def _results(c: ContainerDep) -> TestResults:
    return c.results


async def _revoker(c: ContainerDep) -> GrantRevoker:
    return c.revoker


async def _oauth(c: ContainerDep) -> OAuthBroker:
    return c.oauth


async def _live(c: ContainerDep) -> LiveFeed:
    return c.live


async def _sealer(c: ContainerDep) -> Sealer:
    return c.sealer


async def _clock(c: ContainerDep) -> Clock:
    return c.clock


async def _settings(c: ContainerDep) -> ConfigApiSettings:
    return c.settings


async def _readiness(c: ContainerDep) -> ReadinessCheck:
    return c.readiness


async def _ui_sessions(c: ContainerDep) -> UiSessionStore:
    return c.ui_sessions


async def _mail(c: ContainerDep) -> MailReader:
    return c.mail


async def _agent_tokens(c: ContainerDep) -> AgentTokenStore:
    return c.agent_tokens


async def _audit(c: ContainerDep) -> AuditLog:
    return c.audit


RepoDep = Annotated[ConfigRepository, Depends(_repo)]
LedgerDep = Annotated[SendLedger, Depends(_ledger)]
ApprovalsDep = Annotated[Approvals, Depends(_approvals)]
ContentDep = Annotated[ContentStore, Depends(_content)]
PolicyDep = Annotated[PolicyService, Depends(_policy)]
CommandsDep = Annotated[CommandPublisher, Depends(_commands)]
ResultsDep = Annotated[TestResults, Depends(_results)]
RevokerDep = Annotated[GrantRevoker, Depends(_revoker)]
OAuthDep = Annotated[OAuthBroker, Depends(_oauth)]
LiveDep = Annotated[LiveFeed, Depends(_live)]
SealerDep = Annotated[Sealer, Depends(_sealer)]
ClockDep = Annotated[Clock, Depends(_clock)]
SettingsDep = Annotated[ConfigApiSettings, Depends(_settings)]
ReadinessDep = Annotated[ReadinessCheck, Depends(_readiness)]
UiSessionsDep = Annotated[UiSessionStore, Depends(_ui_sessions)]
MailDep = Annotated[MailReader, Depends(_mail)]
AgentTokensDep = Annotated[AgentTokenStore, Depends(_agent_tokens)]
AuditDep = Annotated[AuditLog, Depends(_audit)]


async def _detection_sources(c: ContainerDep) -> DetectionSources:
    return DetectionSources(dns=c.mail_dns, autoconfig=c.autoconfig)


async def _detections(c: ContainerDep) -> DetectionCache:
    return c.detections


DetectionSourcesDep = Annotated[DetectionSources, Depends(_detection_sources)]
DetectionsDep = Annotated[DetectionCache, Depends(_detections)]

IfMatch = Annotated[
    str | None,
    # documented as what versions.parse_if_match accepts; anything else is answered 422
    WithJsonSchema(
        {"type": "string", "pattern": r'^(\*|(W/)?"[0-9]{1,9}")$', "examples": ['"3"', "*"]}
    ),
    Header(description="an ETag from GET; `*` for any version"),
]
CommandId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,200}$")]
ID_PATTERN = r"^[A-Za-z0-9_\-:@+=]{1,200}$"  # what a NATS subject's id token may be
AgentId = Annotated[str, Path(pattern=ID_PATTERN, examples=[examples.AGENT_ID])]
FlowId = Annotated[str, Path(pattern=FLOW_ID_PATTERN, examples=[examples.FLOW_ID])]


def resource_router(
    *, only_declared_query: bool = True, dependencies: Sequence[Any] = (), **options: object
) -> APIRouter:
    """A router whose routes each refuse a body over ``MAX_REQUEST_BYTES`` with 413, unless a route
    names its own limit (sends), and a query parameter they do not declare with 422: a misspelt
    filter (``?stauts=held``) would otherwise answer everything. The limit is each route's, not
    the router's: FastAPI mounts a router that has a limit of its own as a sub-application, whose
    routes then lose their full path templates (which the metrics are labelled by).

    ``only_declared_query=False`` for pages a third party links to with parameters of its own
    (an OAuth provider's redirect adds ``session_state``, ``iss``, ``hd``…)."""
    checks = [Depends(_only_declared_query)] if only_declared_query else []
    router = APIRouter(dependencies=[*checks, *dependencies], **options)  # type: ignore[arg-type]
    router.max_body_size = MAX_REQUEST_BYTES
    return router


async def _only_declared_query(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    if unknown := sorted(set(request.query_params) - _declared_query(route)):
        raise MailbridgeError(ErrorCode.INVALID_INPUT, f"Unknown query parameters {unknown}.")


def _declared_query(route: APIRoute) -> frozenset[str]:
    """The query parameter names the route and its dependencies declare, worked out once and
    kept on the route (a route is not hashable, so no cache can key on it)."""
    known: frozenset[str] | None = getattr(route, "_declared_query", None)
    if known is None:
        names: set[str] = set()
        waiting = [route.dependant]
        while waiting:
            dependant = waiting.pop()
            names.update(field.alias for field in dependant.query_params)
            waiting.extend(dependant.dependencies)
        known = frozenset(names)
        route._declared_query = known  # type: ignore[attr-defined]
    return known

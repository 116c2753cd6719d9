"""A fake of config-api's policy port: the policy service in memory."""

from __future__ import annotations

from pydantic import SecretStr

from mailbridge.config_api.domain.errors import PolicyUnavailable
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.messages import (
    ApproveSend,
    ClientOrgBanner,
    ClientOrgView,
    DeleteClientOrg,
    DeleteOrgConfig,
    EffectivePolicy,
    GetEffectivePolicy,
    OrgAppBanner,
    OrgEmailConfigView,
    OrgOAuthApp,
    PolicyDocumentReply,
    PutClientOrg,
    PutOrgConfig,
    Request,
    SendAuthorization,
)
from mailbridge.shared.messages.policy import ClientOrgRequest, OrgRequest


class FakePolicyService:
    """policy in memory: org apps and client orgs; ``down`` makes it answer nothing at all."""

    def __init__(self) -> None:
        self.org_apps: dict[str, dict[str, OrgOAuthApp]] = {}
        self.org_secrets: dict[tuple[str, str], SecretStr] = {}  # (org, provider): as sealed
        self.client_orgs: dict[tuple[str, str], ClientOrgView] = {}
        self.asked: list[Request] = []
        self.down = False
        self.approval = SendAuthorization(allowed=True)  # what every approval is answered

    async def document(self, request: OrgRequest | ClientOrgRequest) -> PolicyDocumentReply:
        self._answering(request)
        if isinstance(request, OrgRequest):
            return self._org_document(request)
        key = (request.org_id, request.client_org_id)
        if isinstance(request, PutClientOrg):
            body = dict(request.body)
            self.client_orgs[key] = ClientOrgView(org_id=key[0], client_org_id=key[1], **body)
        found = self.client_orgs.pop(key, None) if isinstance(request, DeleteClientOrg) else None
        found = found or self.client_orgs.get(key)
        if found is None:
            return PolicyDocumentReply(error=ErrorInfo.of(ErrorCode.NOT_FOUND, "No such one."))
        return PolicyDocumentReply(document=found)

    def _org_document(self, request: OrgRequest) -> PolicyDocumentReply:
        if isinstance(request, PutOrgConfig):
            given = {"microsoft": request.body.microsoft, "google": request.body.google}
            self.org_apps[request.org_id] = {
                provider: OrgOAuthApp(
                    client_id=app.client_id,
                    tenant_id=getattr(app, "tenant_id", None),
                    has_client_secret=app.client_secret is not None,
                )
                for provider, app in given.items()
                if app is not None
            }
            self.org_secrets.update(
                {
                    (request.org_id, provider): app.client_secret
                    for provider, app in given.items()
                    if app is not None and app.client_secret is not None
                }
            )
        if isinstance(request, DeleteOrgConfig):
            self.org_apps.pop(request.org_id, None)
            self.org_secrets = {k: v for k, v in self.org_secrets.items() if k[0] != request.org_id}
            return PolicyDocumentReply()
        apps = self.org_apps.get(request.org_id, {})
        return PolicyDocumentReply(document=OrgEmailConfigView(org_id=request.org_id, **apps))

    async def effective(self, request: GetEffectivePolicy) -> EffectivePolicy:
        self._answering(request)
        client_org = self.client_orgs.get((request.org_id, request.client_org_id or ""))
        banner = ClientOrgBanner(**client_org.model_dump()) if client_org else None
        app = self._app_for(request)
        return EffectivePolicy(
            agent_id=request.agent_id,
            oauth_app=app,
            oauth_client_secret=self._secret_for(request, app),
            client_org=banner,
            warnings=banner.warnings if banner else [],
        )

    def _secret_for(
        self, request: GetEffectivePolicy, app: OrgAppBanner | None
    ) -> SecretStr | None:
        """As policy does: only when asked, only for an inherited app."""
        if not request.include_secret or app is None or not app.inherited:
            return None
        return self.org_secrets.get((request.org_id, app.provider.value))

    def _app_for(self, request: GetEffectivePolicy) -> OrgAppBanner | None:
        provider = request.provider
        if provider is None:
            return None
        if request.agent_client_id:
            return OrgAppBanner(
                provider=provider, client_id=request.agent_client_id, inherited=False
            )
        app = self.org_apps.get(request.org_id, {}).get(provider.value)
        if app is None:
            return None
        shown = app.model_dump(include={"client_id", "tenant_id"})
        return OrgAppBanner(provider=provider, **shown, inherited=True)

    async def approve(self, request: ApproveSend) -> SendAuthorization:
        self._answering(request)
        return self.approval

    def _answering(self, request: Request) -> None:
        if self.down:
            raise PolicyUnavailable()
        self.asked.append(request)

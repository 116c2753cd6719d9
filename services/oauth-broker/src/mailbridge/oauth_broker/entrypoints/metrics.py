"""oauth-broker's Prometheus metrics: how token refreshes at the providers end."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from mailbridge.shared.messages import Provider


class TokenMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.refreshes = Counter(
            "mailbridge_oauth_token_refreshes",
            "Refreshes at a provider's token endpoint, by provider and outcome (refreshed;"
            " revoked: the grant needs a new sign-in; misconfigured: the OAuth app was refused;"
            " transient: 429, 5xx or the network, after the retries)",
            ["provider", "outcome"],
            registry=registry,
        )

    def refresh_ended(self, provider: Provider, outcome: str) -> None:
        self.refreshes.labels(provider=provider.value, outcome=outcome).inc()

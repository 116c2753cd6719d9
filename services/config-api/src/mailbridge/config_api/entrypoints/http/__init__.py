"""config-api's HTTP edge, one router module per resource; ``deps`` holds what routes take.

- ``agents``: register or update an agent
- ``email_config``: read, save and delete an agent's email configuration; the presets
- ``detection``: the settings detected for an address (presets, MX, autoconfig, SRV)
- ``connection``: the connection test, and the live status (Server-Sent Events)
- ``messages``: send or reply, and where a send stands
- ``mail``: read the agent's mailbox on demand (a folder, a message, marking one seen)
- ``audit``: the agent's audit trail (what happened and why), newest first
- ``agent_tokens``: the tokens an agent itself holds (its mail, its sends, ``/mcp``)
- ``oauth``: begin an OAuth sign-in for an agent, and see where one stands
- ``oauth_popup``: the sign-in popup's start and callback pages (HTML, page template in
  ``oauth_page``), opened without an API key
- ``orgs``: an org's shared OAuth apps and its client organizations (stored by policy)
- ``health``: liveness and readiness
- ``ui``: the reference Email tab's page, script and style
- ``ui_sessions``: the Email tab's sessions: a link for one agent (with an API key), and the
  page's exchange of it for a cookie, its renewal and its end (without one)

Every route is thin: decode, call a handler with the ports it names, answer. Errors become
problem+json in ``entrypoints/problems.py``.
"""

from __future__ import annotations

from fastapi import APIRouter

from mailbridge.config_api.entrypoints.http import (
    agent_tokens,
    agents,
    audit,
    connection,
    detection,
    email_config,
    health,
    mail,
    messages,
    oauth,
    oauth_popup,
    orgs,
    ui,
    ui_sessions,
)


def routers() -> list[APIRouter]:
    """Every router of the API, in the order the OpenAPI document lists them. Each is included in
    the app itself, not in another router: a route of a nested router is known by its own path
    only, and the metrics label requests by the whole path template."""
    resources = (
        agents, email_config, detection, connection, oauth, messages, mail, agent_tokens,
        audit, orgs, ui_sessions, oauth_popup, health, ui,
    )  # fmt: skip
    return [resource.router for resource in resources]

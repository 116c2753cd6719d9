"""What each service reads from its environment: its pydantic settings class, found by the module
``python -m`` runs. The deployment contract tests (compose, Kubernetes) check what a deployment
sets against it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.oauth_broker.settings import OAuthBrokerSettings
from mailbridge.policy.settings import PolicySettings

PREFIX = "MAILBRIDGE_"
SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    ConfigApiSettings,
    OAuthBrokerSettings,
    MailWorkerSettings,
    PolicySettings,
)
# mailbridge.config_api.settings -> mailbridge.config_api, the module `python -m` runs.
SETTINGS_BY_MODULE = {cls.__module__.rpartition(".")[0]: cls for cls in SETTINGS_CLASSES}


def env_names(settings: type[BaseSettings]) -> dict[str, str]:
    """Field name -> the environment variable that sets it."""
    prefix = settings.model_config.get("env_prefix", "")
    return {field: f"{prefix}{field}".upper() for field in settings.model_fields}


def unread_variables(variables: Iterable[str], settings: type[BaseSettings]) -> list[str]:
    """The ``MAILBRIDGE_`` variables among ``variables`` that no field of ``settings`` reads."""
    allowed = set(env_names(settings).values())
    return [var for var in variables if var.startswith(PREFIX) and var not in allowed]


def misspelt_variables(variables: Iterable[str], settings: type[BaseSettings]) -> list[str]:
    """Variables without the prefix that look like one the service reads (``MAILBRIGE_X``)."""
    allowed = list(env_names(settings).values())
    return [
        var
        for var in variables
        if not var.startswith(PREFIX) and difflib.get_close_matches(var, allowed, n=1, cutoff=0.8)
    ]


def required_variables(settings: type[BaseSettings]) -> list[str]:
    names = env_names(settings)
    return [names[field] for field, info in settings.model_fields.items() if info.is_required()]


def secret_variables(settings: type[BaseSettings]) -> list[str]:
    names = env_names(settings)
    return [
        names[field]
        for field, info in settings.model_fields.items()
        if info.annotation is SecretStr
    ]

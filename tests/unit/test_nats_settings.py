"""How a service is told where NATS is and how many copies its streams keep."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mailbridge.shared.settings import ServiceSettings


def test_one_url_is_a_list_of_one() -> None:
    assert ServiceSettings(nats_url="nats://nats:4222").nats_servers == ["nats://nats:4222"]


def test_a_comma_separated_url_lists_every_server_in_order() -> None:
    settings = ServiceSettings(nats_url=" nats://a:4222, nats://b:4222 ,nats://c:4222,")
    assert settings.nats_servers == ["nats://a:4222", "nats://b:4222", "nats://c:4222"]


def test_streams_keep_one_copy_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().stream_replicas == 1
    monkeypatch.setenv("MAILBRIDGE_STREAM_REPLICAS", "3")
    assert ServiceSettings().stream_replicas == 3


@pytest.mark.parametrize("count", [0, 6])
def test_a_replica_count_jetstream_cannot_keep_is_refused(count: int) -> None:
    with pytest.raises(ValidationError):
        ServiceSettings(stream_replicas=count)

from __future__ import annotations

import pytest

from mailbridge.shared.crypto import (
    Sealer,
    SealingError,
    SealingKeyError,
    generate_key_spec,
    parse_keys,
)


def sealer(*specs: str) -> Sealer:
    return Sealer(parse_keys(",".join(specs)))


def test_a_sealed_secret_opens_for_its_own_row() -> None:
    s = sealer(generate_key_spec("k1"))
    sealed = s.seal("app-password", "agent-1")
    assert "app-password" not in sealed
    assert sealed.startswith("k1.")
    assert s.open(sealed, "agent-1") == "app-password"


def test_a_ciphertext_copied_to_another_row_does_not_open() -> None:
    s = sealer(generate_key_spec("k1"))
    with pytest.raises(SealingError):
        s.open(s.seal("app-password", "agent-1"), "agent-2")


def test_the_first_key_seals_and_every_key_opens() -> None:
    old, new = generate_key_spec("old"), generate_key_spec("new")
    sealed_before_rotation = sealer(old).seal("secret", "row")
    rotated = sealer(new, old)
    assert rotated.open(sealed_before_rotation, "row") == "secret"
    assert rotated.key_id_of(rotated.seal("secret", "row")) == "new"


def test_a_value_sealed_with_an_unknown_key_does_not_open() -> None:
    sealed = sealer(generate_key_spec("gone")).seal("secret", "row")
    with pytest.raises(SealingError):
        sealer(generate_key_spec("k1")).open(sealed, "row")


@pytest.mark.parametrize("spec", ["", "k1", "k1:not-base64!", "k1:c2hvcnQ", "a b:" + "A" * 43])
def test_missing_or_malformed_keys_are_refused(spec: str) -> None:
    with pytest.raises(SealingKeyError):
        parse_keys(spec)


def test_a_key_never_shows_in_its_repr() -> None:
    spec = generate_key_spec("k1")
    assert spec.split(":")[1] not in repr(parse_keys(spec))

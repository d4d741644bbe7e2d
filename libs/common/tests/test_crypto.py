import pytest

from turnout_common.crypto import (
    DecryptionError,
    KeyRing,
    generate_key,
    hash_virtual_key,
    key_hint,
    new_virtual_key,
)
from turnout_common.errors import ConfigurationError


def test_encrypt_roundtrip_and_ciphertext_hides_plaintext() -> None:
    ring = KeyRing([generate_key()])
    token = ring.encrypt("sk-secret-12345678")
    assert "sk-secret" not in token
    assert ring.decrypt(token) == "sk-secret-12345678"


def test_rotation_old_ciphertext_decrypts_and_rotate_moves_to_newest() -> None:
    old, new = generate_key(), generate_key()
    token = KeyRing([old]).encrypt("sk-abc-99998888")
    ring = KeyRing([new, old])
    assert ring.decrypt(token) == "sk-abc-99998888"
    assert not ring.is_current(token)
    rotated = ring.rotate(token)
    assert ring.is_current(rotated)
    assert KeyRing([new]).decrypt(rotated) == "sk-abc-99998888"
    with pytest.raises(DecryptionError):
        KeyRing([new]).decrypt(token)


def test_missing_or_bad_key_is_a_clear_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="TURNOUT_ENCRYPTION_KEYS"):
        KeyRing([])
    with pytest.raises(ConfigurationError, match="not a Fernet key"):
        KeyRing(["not-a-key"])


def test_key_hint_comes_from_plaintext_and_shows_little() -> None:
    assert key_hint("sk-local-12345678") == "sk-…5678"
    assert key_hint("short") == "…"
    assert "secret" not in key_hint("sk-secretsecretsecret-abcd")


def test_virtual_keys_are_random_and_hashed_deterministically() -> None:
    a, b = new_virtual_key(), new_virtual_key()
    assert a != b and a.startswith("tk-") and len(a) > 40
    assert hash_virtual_key(a) == hash_virtual_key(a)
    assert hash_virtual_key(a) != hash_virtual_key(b)
    assert a not in hash_virtual_key(a)

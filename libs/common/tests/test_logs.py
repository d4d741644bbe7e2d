import logging

import pytest

from turnout_common.crypto import KeyRing, generate_key
from turnout_common.logs import RedactingFilter, redact


@pytest.mark.parametrize(
    "secret_text",
    [
        "Authorization: Bearer abcdef123456SECRET",
        '{"api_key": "sk-live-SECRETSECRET"}',
        "api_key=SECRETSECRET&x=1",
        "postgresql://user:SECRETSECRET@db:5432/x",
        "key sk-ant-SECRETSECRET in text",
        "google AIzaSECRETSECRETSECRETSECRET",
        "virtual tk-SECRETSECRETSECRET",
        "password: SECRETSECRET",
    ],
)
def test_redact_scrubs_secrets(secret_text: str) -> None:
    assert "SECRET" not in redact(secret_text)


def test_redact_scrubs_fernet_tokens() -> None:
    token = KeyRing([generate_key()]).encrypt("x")
    assert token not in redact(f"stored {token}")


def test_filter_redacts_args_and_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("turnout.test.redact")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="turnout.test.redact"):
            logger.info("calling with key %s", "sk-proj-SECRETSECRET")
            try:
                raise ValueError("Bearer SECRETSECRETSECRET rejected")
            except ValueError:
                logger.exception("failed")
    finally:
        logger.filters.clear()
    text = caplog.text
    assert "SECRET" not in text
    assert "[REDACTED]" in text
    assert "calling with key" in text


def test_plain_text_is_untouched() -> None:
    assert redact("routed model llama-8b to gpu-box in 12 ms") == (
        "routed model llama-8b to gpu-box in 12 ms"
    )


def test_a_decrypted_key_of_any_shape_is_scrubbed_from_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No pattern knows a key like ``zq…`` or ``EMPTY-ish``: decrypting it is what teaches the
    filter (an upstream echoing it, a traceback quoting it)."""
    ring = KeyRing([generate_key()])
    key = "zq" + "4e7" * 10
    assert redact(f"upstream said: bad key {key}") == f"upstream said: bad key {key}"
    assert ring.decrypt(ring.encrypt(key)) == key
    assert redact(f"upstream said: bad key {key}!") == "upstream said: bad key [REDACTED]!"
    logger = logging.getLogger("test.echo")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="test.echo"):
            try:
                raise ValueError(f"header value {key!r} refused")
            except ValueError:
                logger.exception("sending failed for %s", key)
    finally:
        logger.removeFilter(logger.filters[-1])
    assert key not in caplog.text
    assert "sending failed for [REDACTED]" in caplog.text

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

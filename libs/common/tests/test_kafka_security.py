"""Kafka client security settings: validation, and a real TLS (mutual) connection.

The TLS test puts a TLS-terminating proxy in front of a Tansu broker that advertises the
proxy's port, so every client connection (bootstrap and broker) is TLS with client
certificates, verified against a throwaway CA.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from turnout_common.broker import Producer, ensure_topics, wait_for_broker
from turnout_common.devinfra import TansuBroker, free_port
from turnout_common.follow import TopicFollower
from turnout_common.settings import KafkaSettings
from turnout_common.testing.plugin import SMALL_KAFKA_TIMEOUTS
from turnout_common.topics import Topic


def test_sasl_needs_mechanism_and_credentials() -> None:
    with pytest.raises(ValidationError, match="TURNOUT_KAFKA_SASL_MECHANISM"):
        KafkaSettings(security_protocol="SASL_SSL", sasl_username="u")
    ok = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="turnout",
        sasl_password="s3cret",
    )
    opts = ok.client_options()
    assert opts["sasl_mechanism"] == "SCRAM-SHA-512"
    assert opts["sasl_plain_username"] == "turnout"
    assert opts["sasl_plain_password"] == "s3cret"
    assert "ssl_context" not in opts
    assert "s3cret" not in repr(ok)  # a SecretStr: never in logs or reprs


def test_ssl_files_must_exist_and_cert_goes_with_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no such file"):
        KafkaSettings(security_protocol="SSL", ssl_cafile=tmp_path / "missing.pem")
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ValidationError, match="go together"):
        KafkaSettings(security_protocol="SSL", ssl_certfile=tmp_path / "c.pem")
    with pytest.raises(ValidationError):
        KafkaSettings(security_protocol="TLS")  # not a Kafka protocol name


def test_plaintext_is_the_default() -> None:
    opts = KafkaSettings(bootstrap="k:9092").client_options()
    assert opts == {"bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}


# -- a real TLS connection -------------------------------------------------------------------


def _cert(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, issuer_key: object, ca: bool
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "turnout-test-ca")])
    ca = _cert("turnout-test-ca", ca_key, ca_name, ca_key, ca=True)
    _write(tmp_path / "ca", ca, ca_key)
    for who in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(tmp_path / who, _cert(who, key, ca_name, ca_key, ca=False), key)
    return tmp_path


@pytest.fixture
async def tls_broker(pki: Path) -> AsyncIterator[str]:
    """Tansu behind a TLS proxy that requires a client certificate signed by the CA."""
    proxy_port = free_port()
    tansu = TansuBroker(advertised_port=proxy_port)
    tansu.start()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "server.crt"), str(pki / "server.key"))
    ctx.verify_mode = ssl.CERT_REQUIRED

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(tansu.host, tansu.port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", proxy_port, ssl=ctx)
    try:
        yield f"127.0.0.1:{proxy_port}"
    finally:
        server.close()
        tansu.stop()


async def test_mutual_tls_end_to_end(tls_broker: str, pki: Path) -> None:
    settings = KafkaSettings.model_validate(
        {
            "bootstrap": tls_broker,
            "client_id": "turnout-tls-test",
            **SMALL_KAFKA_TIMEOUTS,
            "security_protocol": "SSL",
            "ssl_cafile": pki / "ca.crt",
            "ssl_certfile": pki / "client.crt",
            "ssl_keyfile": pki / "client.key",
        }
    )
    topic = "turnout.test.tls"
    await ensure_topics(settings, [Topic(topic, 1, True, "t")])
    producer = Producer(settings)
    await producer.start()
    seen: list[bytes | None] = []
    follower = TopicFollower(settings, topic, lambda k, v: seen.append(v))
    try:
        await producer.send(topic, b"over tls", key=b"k")
        await follower.start()
        follower.start_background()
        async with asyncio.timeout(10):
            while seen != [b"over tls"]:
                await asyncio.sleep(0.02)
    finally:
        await follower.stop()
        await producer.stop()

    # without the client certificate the proxy refuses the handshake: no connection at all
    no_cert = settings.model_copy(update={"ssl_certfile": None, "ssl_keyfile": None})
    with pytest.raises(Exception):  # noqa: B017 - aiokafka's error type varies by version
        await wait_for_broker(no_cert, timeout=1.0)

"""A pinned https webhook keeps its name for TLS: a local TLS receiver whose certificate names
only ``hooks.example`` (no IP address) accepts the sender's connection to 127.0.0.1, sees
``hooks.example`` as SNI and in ``Host``; a certificate for another name is refused."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from snapshot_api.webhooks.sender import Outcome, Sender, SenderConfig


def certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` alone, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsReceiver:
    def __init__(self, cert: Path, key: Path) -> None:
        self.sni: list[str | None] = []
        self.hosts: list[str] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda sock, name, ctx: self.sni.append(name)  # type: ignore[assignment]
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.hosts.append(self.headers["Host"])
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[TlsReceiver, Path]]:
    cert, key = certificate(tmp_path, "hooks.example")
    receiver = TlsReceiver(cert, key)
    try:
        yield receiver, cert
    finally:
        receiver.close()


async def resolver(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


async def send_trusting(cert: Path, url: str) -> Outcome:
    """One delivery to ``url`` by a sender that trusts ``cert`` alone and resolves every name
    to 127.0.0.1."""
    trust = ssl.create_default_context(cafile=str(cert))
    sender = Sender(SenderConfig((), True, 5.0), resolver, verify=trust)
    try:
        return await sender.send(url, uuid.uuid4(), b"{}", b"k" * 32)
    finally:
        await sender.close()


async def test_the_pinned_connection_presents_the_name_for_sni_and_certificate(
    tls: tuple[TlsReceiver, Path],
) -> None:
    receiver, cert = tls
    outcome = await send_trusting(cert, f"https://hooks.example:{receiver.port}/in")
    assert outcome.delivered and outcome.status_code == 204, outcome
    assert receiver.sni == ["hooks.example"]
    assert receiver.hosts == [f"hooks.example:{receiver.port}"]
    # hooks.example has no DNS record: the connection went to the address the resolver gave.


async def test_a_certificate_for_another_name_is_refused(
    tls: tuple[TlsReceiver, Path],
) -> None:
    receiver, cert = tls
    outcome = await send_trusting(cert, f"https://other.example:{receiver.port}/in")
    assert not outcome.delivered and outcome.error is not None
    assert "certificate" in outcome.error.lower() or "hostname" in outcome.error.lower()
    assert receiver.hosts == []

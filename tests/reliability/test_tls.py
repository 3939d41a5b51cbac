"""TLS and safe defaults, with a real certificate chain made here (trustme): a root CA, an
intermediate CA and a server certificate for ``localhost``.

* the client verifies the chain and the host name by default, and works with ``ca_certs``;
* the server speaks TLS 1.2 and 1.3 only, with forward-secret AEAD ciphers: a client that
  offers at most TLS 1.1 (and that does reach TLS 1.1 with a permissive server, shown first) is
  refused, and so is a TLS 1.2 client offering only RSA key exchange or CBC ciphers;
* ``tempodb serve`` binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from serverproc import ServerProcess, create_key, data_args
from tempodb import Client, DataPoint, TempoDBConnectionError
from tempodb.cli.serve import tls_context

DAY = (datetime.datetime(2012, 1, 1), datetime.datetime(2012, 1, 2))


@dataclass
class TLSServer:
    process: ServerProcess
    credentials: tuple[str, str]
    ca: trustme.CA
    ca_file: str
    leaf: trustme.LeafCert


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    folder = tmp_path_factory.mktemp("tls")
    root = trustme.CA(organization_name="tempodb test root")
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert("localhost", key_type=trustme.KeyType.RSA)
    chain, key, ca_file = folder / "chain.pem", folder / "key.pem", folder / "ca.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    root.cert_pem.write_to_path(str(ca_file))
    store = data_args(folder / "data")
    credentials = create_key(store)
    process = ServerProcess.start(store, "--tls-cert", str(chain), "--tls-key", str(key))
    yield TLSServer(process, credentials, root, str(ca_file), leaf)
    assert process.stop() == 0


def test_client_over_tls_trusting_the_root(tls: TLSServer) -> None:
    assert tls.process.scheme == "https"
    port = tls.process.port
    with Client(*tls.credentials, "localhost", port, secure=True, ca_certs=tls.ca_file) as client:
        client.write_key("secure", [DataPoint(DAY[0], 1)])
        assert client.read_key("secure", *DAY).data[0].value == 1


def test_client_verifies_certificates_by_default(tls: TLSServer) -> None:
    port = tls.process.port
    with (
        Client(*tls.credentials, "localhost", port, secure=True, timeout=5) as client,
        pytest.raises(TempoDBConnectionError),
    ):
        client.get_series()  # the test root is in no trust store
    with (
        Client(*tls.credentials, "127.0.0.1", port, secure=True, ca_certs=tls.ca_file) as client,
        pytest.raises(TempoDBConnectionError),
    ):
        client.get_series()  # a trusted chain, but for another host name


def client_context(tls: TLSServer) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.ca.configure_trust(context)
    return context


def handshake(context: ssl.SSLContext, port: int) -> tuple[str | None, str]:
    """(protocol, cipher) of a handshake with the server on ``port``."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as conn,
    ):
        return conn.version(), conn.cipher()[0]


def old_protocol_client(tls: TLSServer) -> ssl.SSLContext:
    """A client that offers TLS 1.0 and 1.1 only, with every cipher."""
    context = client_context(tls)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def permissive_server(tls: TLSServer) -> tuple[int, threading.Thread]:
    """A one-handshake TLS server that accepts TLS 1.0 and up (what we must not do)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    tls.leaf.configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass
        finally:
            listener.close()

    thread = threading.Thread(target=serve)
    thread.start()
    return listener.getsockname()[1], thread


def test_tls_1_1_is_refused(tls: TLSServer, tmp_path: Path) -> None:
    # The old client does speak TLS 1.1 where a server allows it...
    port, thread = permissive_server(tls)
    assert handshake(old_protocol_client(tls), port)[0] == "TLSv1.1"
    thread.join()
    # ...and tempodb does not,
    with pytest.raises(ssl.SSLError):
        handshake(old_protocol_client(tls), tls.process.port)
    # whatever the system's OpenSSL configuration says: the minimum is set in the context.
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    tls.leaf.cert_chain_pems[0].write_to_path(str(chain))
    tls.leaf.private_key_pem.write_to_path(str(key))
    assert tls_context(str(chain), str(key)).minimum_version == ssl.TLSVersion.TLSv1_2


def test_tls_1_2_and_1_3_with_strong_ciphers(tls: TLSServer) -> None:
    version, cipher = handshake(client_context(tls), tls.process.port)
    assert version == "TLSv1.3"
    twelve = client_context(tls)
    twelve.maximum_version = ssl.TLSVersion.TLSv1_2
    version, cipher = handshake(twelve, tls.process.port)
    assert version == "TLSv1.2"
    assert cipher.startswith(("ECDHE-", "DHE-"))
    assert "GCM" in cipher or "CHACHA20" in cipher
    for weak in ("AES128-SHA:AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384"):
        context = client_context(tls)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(weak)  # no forward secrecy, or CBC
        with pytest.raises(ssl.SSLError):
            handshake(context, tls.process.port)


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on ``port`` (Linux /proc)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:] if Path(table).exists() else []
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_serve_binds_loopback_by_default(tmp_path: Path) -> None:
    store = data_args(tmp_path / "data")
    process = ServerProcess.start(store)
    try:
        assert process.host == "127.0.0.1"
        assert listening_addresses(process.port) == {"0100007F"}  # 127.0.0.1, little-endian
    finally:
        assert process.stop() == 0

"""A secured Temporal for tests: Debian's nginx terminating TLS in front of the dev server.

nginx checks the client certificate against the test's CA (``ssl_verify_client on``) and the
``authorization`` header against one API key, then proxies gRPC to the plaintext dev server
(``grpc_pass``), as a Temporal Cloud endpoint or an mTLS cluster's ingress would. The
certificates are made in the test with ``openssl``: a CA, the server's certificate for
``temporal.test`` and 127.0.0.1, a client certificate it signed, and a rogue CA with a client
certificate of its own (a wrong certificate, well formed).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .ports import free_port
from .processes import ManagedProcess, wait_until

#: The name in the server's certificate; clients set it as TEMPORAL_TLS_SERVER_NAME.
SERVER_NAME = "temporal.test"
#: The one API key the proxy lets through.
API_KEY = "hs-test-api-key-5f0c2b7e9d14"


def nginx() -> str:
    """Debian's nginx, or a failed test (never a skipped one): CI must run these."""
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("nginx is missing: install the Debian package nginx-light (scripts/setup)")


@dataclass(frozen=True)
class Pki:
    """Where the test's certificates and keys are."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_client_cert: Path
    rogue_client_key: Path

    def private_keys(self) -> list[str]:
        """The base64 lines of every private key: none may ever be printed."""
        lines: list[str] = []
        for path in (self.client_key, self.rogue_client_key, self.server_key):
            lines += [
                line for line in path.read_text().splitlines() if line and "-----" not in line
            ]
        return lines


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip


def _leaf(directory: Path, name: str, ca: str, extensions: str) -> None:
    # rustls accepts X.509 v3 only: every certificate gets its extensions.
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
        "-out", f"{name}.csr", "-subj", f"/CN={name}",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
        cwd=directory,
    )  # fmt: skip


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate, a client certificate, and a rogue client's."""
    directory.mkdir(parents=True, exist_ok=True)
    _ca(directory, "ca")
    _ca(directory, "rogue-ca")
    _leaf(
        directory, "server", "ca",
        f"subjectAltName=DNS:{SERVER_NAME},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )  # fmt: skip
    _leaf(directory, "client", "ca", "extendedKeyUsage=clientAuth\n")
    _leaf(directory, "rogue-client", "rogue-ca", "extendedKeyUsage=clientAuth\n")
    return Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        rogue_client_cert=directory / "rogue-client.pem",
        rogue_client_key=directory / "rogue-client.key",
    )


_CONFIG = """\
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log notice;
events {{ worker_connections 64; }}
http {{
  access_log {root}/access.log;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {server_cert};
    ssl_certificate_key {server_key};
    ssl_client_certificate {ca};
    ssl_verify_client on;
    location / {{
      if ($http_authorization != "Bearer {api_key}") {{ return 401; }}
      grpc_pass grpc://{upstream};
    }}
  }}
}}
"""


@dataclass(frozen=True)
class SecuredTemporal:
    """The proxy's address and what a client needs to pass it."""

    address: str
    pki: Pki
    api_key: str = API_KEY

    def environment(self, **overrides: str) -> dict[str, str]:
        """The standard ``TEMPORAL_*`` variables of a client that passes (``overrides`` win)."""
        return {
            "TEMPORAL_ADDRESS": self.address,
            "TEMPORAL_API_KEY": self.api_key,
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(self.pki.ca),
            "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(self.pki.client_cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(self.pki.client_key),
            **overrides,
        }


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def secured_temporal(directory: Path, upstream: str) -> Iterator[SecuredTemporal]:
    """nginx terminating TLS (mTLS + API key) in front of the Temporal at ``upstream``."""
    pki = make_pki(directory / "pki")
    root = directory / "nginx"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "nginx.conf"
    text = _CONFIG.format(
        root=root,
        port=port,
        upstream=upstream,
        api_key=API_KEY,
        server_cert=pki.server_cert,
        server_key=pki.server_key,
        ca=pki.ca,
    )
    config.write_text(text)
    # -e: the start-up error log too stays in the test's directory.
    argv = [nginx(), "-p", str(root), "-c", str(config), "-e", str(root / "error.log")]
    process = ManagedProcess("nginx", argv, log_dir=root, env=dict(os.environ))
    try:

        def listening() -> bool:
            process.assert_running()
            return _accepts(port)

        wait_until(
            listening,
            timeout=20,
            what=lambda: f"nginx to listen on {port}\n{process.log_tail()}",
        )
        yield SecuredTemporal(f"127.0.0.1:{port}", pki)
    finally:
        process.stop()

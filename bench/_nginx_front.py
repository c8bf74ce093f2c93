"""Debian's nginx as a compiled gRPC forwarder in front of Temporal, for ``bench.proxy``.

Two shapes: **nginx** forwards every method to Temporal (what a compiled forwarder costs, the
floor of any proxy in the path); **split** sends only the methods ``handshake-obs proxy``
observes to the proxy and every other one straight to Temporal (the routing docs/proxy.md
describes).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path
from typing import Any

from handshake_obs.proxy._methods import OBSERVED_METHODS

_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  upstream temporal {{ server {temporal}; keepalive 64; }}
  upstream observed {{ server {observed}; keepalive 64; }}
  # Long polls last about a minute: nothing may time them out first.
  grpc_read_timeout 300s;
  grpc_send_timeout 300s;
  client_body_timeout 300s;
  client_max_body_size 0;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port} http2;
{locations}
    location / {{ grpc_pass grpc://temporal; }}
  }}
}}
"""


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _write_config(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "nginx.conf"
    config.write_text(text)
    return config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_nginx(root: Path, temporal: str, proxy: str | None) -> tuple[Any, str]:
    """nginx on a free port: everything to ``temporal``, or (``proxy`` given) the observed
    methods to ``proxy`` and the rest to ``temporal``. Its process and address."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = _free_port()
    locations = "".join(
        f"    location = {method} {{ grpc_pass grpc://observed; }}\n"
        for method in (OBSERVED_METHODS if proxy else ())
    )
    text = _CONFIG.format(
        root=root, port=port, temporal=temporal, observed=proxy or temporal, locations=locations
    )
    config = _write_config(root, text)
    process = await asyncio.create_subprocess_exec(
        binary, "-p", str(root), "-c", str(config), "-e", str(root / "error.log"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        if _accepts(port):
            return process, f"127.0.0.1:{port}"
        await asyncio.sleep(0.1)
    raise SystemExit(f"nginx did not start: {(root / 'error.log').read_text()}")

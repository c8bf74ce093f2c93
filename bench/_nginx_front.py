"""Debian's nginx as a compiled gRPC forwarder in front of Temporal, for ``bench.proxy``.

The shipped front (``deploy/nginx/handshake-obs-front.conf.template``) in two fillings:
**nginx** sends every method to Temporal (what a compiled forwarder costs, the floor of any
proxy in the path); **split** sends the methods ``handshake-obs proxy`` observes to the
proxy and every other one straight to Temporal.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path
from string import Template
from typing import Any

TEMPLATE = Path(__file__).parent.parent / "deploy" / "nginx" / "handshake-obs-front.conf.template"

_MAIN = """\
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
  include {front};
}}
"""


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_config(root: Path, listen: str, temporal: str, proxy: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    front = root / "front.conf"
    front.write_text(
        Template(TEMPLATE.read_text()).substitute(
            LISTEN_ADDRESS=listen, TEMPORAL_ADDRESS=temporal, HANDSHAKE_PROXY_ADDRESS=proxy
        )
    )
    config = root / "nginx.conf"
    config.write_text(_MAIN.format(root=root, front=front))
    return config


async def start_nginx(root: Path, temporal: str, proxy: str | None) -> tuple[Any, str]:
    """nginx on a free port: everything to ``temporal``, or (``proxy`` given) the observed
    methods to ``proxy`` and the rest to ``temporal``. Its process and address."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = _free_port()
    address = f"127.0.0.1:{port}"
    config = _write_config(root, address, temporal, proxy or temporal)
    process = await asyncio.create_subprocess_exec(
        binary, "-p", str(root), "-c", str(config), "-e", str(root / "error.log"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        if _accepts(port):
            return process, address
        await asyncio.sleep(0.1)
    raise SystemExit(f"nginx did not start: {(root / 'error.log').read_text()}")

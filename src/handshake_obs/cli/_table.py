"""The one table renderer of the commands: columns two spaces apart, header first."""

from __future__ import annotations

from collections.abc import Sequence


def render_table(
    rows: Sequence[Sequence[str]], *, header: Sequence[str] | None = None
) -> list[str]:
    """Aligned lines of ``rows`` (after ``header``, if any); no trailing spaces.

    Cells are separated by at least two spaces, so ``re.split(r"\\s{2,}", line)`` reads a
    line back even when a cell holds a single space.
    """
    lines = [tuple(header)] if header is not None else []
    lines += [tuple(row) for row in rows]
    if not lines:
        return []
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]

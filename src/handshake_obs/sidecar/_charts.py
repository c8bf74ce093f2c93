"""The status page's pictures, drawn as inline SVG on the server: no script, no library,
nothing fetched, legible printed or offline.

Each chart says what it shows in its ``<title>`` and caption, labels its axes, and carries
its numbers as ``data-*`` attributes (what a browser test, or a curious reader, checks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from ..ledger import FinishedLatency
from ._history import PendingSample
from ._html import age, clock

WIDTH, HEIGHT = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 150, 14, 30
#: Line colours by target, in order of the legend (colour-blind safe, Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: Upper bounds (seconds) of the latency bars; the last bar is everything above.
LATENCY_BOUNDS = (1.0, 10.0, 60.0, 600.0, 3600.0, 6 * 3600.0, 86400.0)


def pending_chart(samples: Sequence[PendingSample]) -> str:
    """Pending handoffs over time, one line per target."""
    targets = sorted({t for s in samples for t in s.by_target})
    if len(samples) < 2 or not targets:
        return (
            "<p class=note id=pending-chart-empty>The picture of pending handoffs over time "
            "fills in as this process samples the ledger (every 15 s, the last hour).</p>"
        )
    start, end = samples[0].at, samples[-1].at
    span = max(end - start, 1.0)
    top = _nice_top(max(max(s.by_target.values(), default=0) for s in samples))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def x(at: float) -> float:
        return _LEFT + (at - start) / span * plot_w

    def y(value: float) -> float:
        return _TOP + plot_h - value / top * plot_h

    parts = [_axes(plot_w, plot_h)]
    for tick in (0, top / 2, top):
        parts.append(
            f"<text x={_LEFT - 6} y={y(tick) + 4:.1f} text-anchor=end>{_count(tick)}</text>"
            f"<line x1={_LEFT} x2={_LEFT + plot_w} y1={y(tick):.1f} y2={y(tick):.1f} "
            'stroke="#eaeef2"/>'
        )
    parts.append(f"<text x={_LEFT} y={HEIGHT - 8}>{escape(clock(start)[11:])}</text>")
    parts.append(
        f"<text x={_LEFT + plot_w} y={HEIGHT - 8} text-anchor=end>"
        f"{escape(clock(end)[11:])} UTC</text>"
    )
    for n, target in enumerate(targets):
        colour = PALETTE[n % len(PALETTE)]
        points = " ".join(f"{x(s.at):.1f},{y(s.by_target.get(target, 0)):.1f}" for s in samples)
        last = samples[-1].by_target.get(target, 0)
        parts.append(
            f'<polyline class=series data-target="{escape(target)}" data-last="{last}" '
            f'fill=none stroke="{colour}" stroke-width=2 points="{points}">'
            f"<title>{escape(target)}: {last} pending now</title></polyline>"
        )
        ly = _TOP + 14 + n * 16
        parts.append(
            f'<rect x={WIDTH - _RIGHT + 12} y={ly - 9} width=12 height=4 fill="{colour}"/>'
            f"<text x={WIDTH - _RIGHT + 30} y={ly - 4}>{escape(target)} ({last})</text>"
        )
    caption = f"Pending handoffs by target, {age(span)} to now"
    return _svg("pending-chart", caption, "".join(parts))


def latency_chart(latencies: Sequence[FinishedLatency], *, window: str) -> str:
    """How long recently finished handoffs took, start to outcome: a bar per range."""
    if not latencies:
        return (
            "<p class=note id=latency-chart-empty>No handoff finished in the last "
            f"{escape(window)}: no latency to draw.</p>"
        )
    counts = [0] * (len(LATENCY_BOUNDS) + 1)
    for one in latencies:
        counts[next((i for i, b in enumerate(LATENCY_BOUNDS) if one.seconds <= b), -1)] += 1
    labels = [f"≤ {_bound(b)}" for b in LATENCY_BOUNDS] + [f"> {_bound(LATENCY_BOUNDS[-1])}"]
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    top = _nice_top(max(counts))
    bar_w = plot_w / len(counts)
    parts = [_axes(plot_w, plot_h)]
    for i, (label, n) in enumerate(zip(labels, counts, strict=True)):
        h = n / top * plot_h
        bx = _LEFT + i * bar_w
        parts.append(
            f'<rect class=bar data-range="{escape(label)}" data-count={n} x={bx + 3:.1f} '
            f'y={_TOP + plot_h - h:.1f} width={bar_w - 6:.1f} height={h:.1f} fill="#0072B2">'
            f"<title>{escape(label)}: {n}</title></rect>"
            f"<text x={bx + bar_w / 2:.1f} y={HEIGHT - 8} text-anchor=middle>{escape(label)}"
            "</text>"
        )
        if n:
            parts.append(
                f"<text x={bx + bar_w / 2:.1f} y={_TOP + plot_h - h - 3:.1f} "
                f"text-anchor=middle>{n}</text>"
            )
    ordered = sorted(one.seconds for one in latencies)
    for row, q in enumerate((0.5, 0.9, 0.99)):
        value = ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]
        parts.append(
            f"<text class=quantile data-q={q} x={WIDTH - _RIGHT + 12} y={_TOP + 14 + row * 16}>"
            f"p{round(q * 100)}: {escape(_duration(value))}</text>"
        )
    parts.append(
        f"<text x={WIDTH - _RIGHT + 12} y={_TOP + 14 + 3 * 16}>{len(ordered)} handoffs</text>"
    )
    caption = f"Start to outcome of the handoffs finished in the last {window}"
    return _svg("latency-chart", caption, "".join(parts))


def _svg(ident: str, caption: str, body: str) -> str:
    return (
        f"<figure class=chart><svg id={ident} role=img viewBox='0 0 {WIDTH} {HEIGHT}' "
        f"width={WIDTH} height={HEIGHT} aria-label='{escape(caption)}'>"
        f"<title>{escape(caption)}</title>{body}</svg>"
        f"<figcaption class=note>{escape(caption)}</figcaption></figure>"
    )


def _axes(plot_w: float, plot_h: float) -> str:
    bottom = _TOP + plot_h
    return (
        f'<rect x=0 y=0 width={WIDTH} height={HEIGHT} fill="#fff"/>'
        f'<line x1={_LEFT} x2={_LEFT} y1={_TOP} y2={bottom} stroke="#57606a"/>'
        f'<line x1={_LEFT} x2={_LEFT + plot_w} y1={bottom} y2={bottom} stroke="#57606a"/>'
    )


def _nice_top(value: float) -> float:
    """A round axis top at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return float(next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= value))


def _duration(seconds: float) -> str:
    """``age`` for people, with sub-second times in milliseconds (``250ms``, not ``0s``)."""
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else age(seconds)


def _count(value: float) -> str:
    return f"{value:g}"


def _bound(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"

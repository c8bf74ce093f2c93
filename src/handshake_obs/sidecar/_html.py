"""What the sidecar's HTML pages share: their style sheet, times and ages for people, and
escaped links. No script and nothing fetched from elsewhere: the pages work offline."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from urllib.parse import quote, urlencode

from .._handoff_filter import HandoffFilter

STYLE = """
:root{--line:#d0d7de;--muted:#57606a;--bad:#b42318;--bad-bg:#fef3f2;--ok:#1a7f37}
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem 2rem;color:#1b1f24;background:#f6f8fa}
h1{font-size:1.35rem;margin:0}h2{font-size:1.05rem;margin:1.8rem 0 .2rem}
.sub,.note,.empty,small{color:var(--muted)}.sub{margin:.2rem 0 1rem}.note{margin:0 0 .5rem}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid var(--line);padding:.3rem .65rem;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}td.zero{color:#afb8c1}
code{font-size:12px}a{color:#0550ae}
tr[data-state=overdue] td{background:var(--bad-bg)}
tr[data-state=overdue] td:first-child{box-shadow:inset 4px 0 var(--bad)}
td.deadline small{display:block}tr[data-state=overdue] td.deadline{color:var(--bad)}
tr[data-state=overdue] td.deadline small{color:var(--bad);font-weight:700}
.cards{display:flex;gap:.8rem;flex-wrap:wrap}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.55rem 1rem;
min-width:9rem;color:var(--muted)}
.card b{display:block;font-size:1.45rem;color:#1b1f24;font-variant-numeric:tabular-nums}
.card.bad{border-color:var(--bad);box-shadow:inset 0 3px var(--bad)}.card.bad b{color:var(--bad)}
.card.good b{color:var(--ok)}
.grid{display:flex;gap:0 2.5rem;flex-wrap:wrap;align-items:flex-start}
.empty{background:#fff;border:1px dashed var(--line);border-radius:6px;padding:.5rem .9rem;
margin:.3rem 0;display:inline-block}.empty.ok::before{content:"\\2713  ";color:var(--ok)}
.bad-n{color:var(--bad);font-weight:600}footer{margin-top:2rem;font-size:12px;color:var(--muted)}
form.search{display:flex;gap:.6rem;flex-wrap:wrap;align-items:end;background:#fff;
border:1px solid var(--line);border-radius:6px;padding:.6rem .9rem;margin:.4rem 0}
form.search label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
form.search input,form.search select{font:inherit;padding:.2rem .35rem;min-width:8rem}
.error{background:var(--bad-bg);border:1px solid var(--bad);border-radius:6px;
padding:.5rem .9rem;color:var(--bad);display:inline-block}
nav.links a,nav.links span{margin-right:1rem}
dl.facts{display:grid;grid-template-columns:max-content auto;
gap:.2rem 1rem;background:#fff;border:1px solid var(--line);border-radius:6px;
padding:.6rem 1rem;margin:.4rem 0}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
ol.timeline{list-style:none;padding:0;margin:.3rem 0;border-left:3px solid var(--line)}
ol.timeline li{margin:0 0 .5rem;padding:.1rem 0 .1rem .9rem;position:relative}
ol.timeline li::before{content:"";position:absolute;left:-8px;top:.45rem;width:11px;
height:11px;border-radius:50%;background:#fff;border:2px solid var(--muted)}
ol.timeline li.bad::before{border-color:var(--bad);background:var(--bad)}
ol.timeline li.good::before{border-color:var(--ok);background:var(--ok)}
ol.timeline time{font-variant-numeric:tabular-nums;color:var(--muted);margin-right:.6rem}
.badge{display:inline-block;border-radius:10px;padding:0 .55rem;font-size:12px;
border:1px solid var(--line);background:#fff;vertical-align:middle;margin-left:.4rem}
.badge.bad{border-color:var(--bad);color:var(--bad)}.badge.good{border-color:var(--ok);
color:var(--ok)}pre.cmd{background:#fff;border:1px solid var(--line);padding:.4rem .7rem;
border-radius:6px;white-space:pre-wrap;font-size:12px}
svg text{font:11px system-ui,sans-serif;fill:#1b1f24}h1 code{font-size:1.15rem}
"""


def status_href(search: HandoffFilter) -> str:
    """The status page filtered by ``search`` (a path relative to the sidecar's root)."""
    return "/?" + urlencode(search.params())


def handoff_href(handoff_id: str) -> str:
    """The handoff page of one handoff."""
    return "/handoffs/" + quote(handoff_id, safe="")


def link(href: str, text: str, **attributes: str) -> str:
    """An escaped ``<a>``."""
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attributes.items())
    return f'<a href="{escape(href)}"{extra}>{escape(text)}</a>'


def clock(timestamp: float) -> str:
    """A Unix time as ``2026-12-02 03:04:05`` (UTC)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(seconds: float) -> str:
    """A duration as people read it on a page: ``42s``, ``7m``, ``5.5h``, ``3d``."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h".replace(".0h", "h")
    return f"{seconds / 86400:.1f}d".replace(".0d", "d")

"""``/docs``: the API reference as a plain page, rendered from the OpenAPI document.

FastAPI's Swagger UI loads its script and styles from a CDN, so offline (an air-gapped
cluster, a laptop on a train) it is a blank page. This page needs nothing from elsewhere:
each operation with its method, path, summary, parameters and body, and a link to the
machine-readable ``/openapi.json`` for tools that want it.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ._html import STYLE, link

_METHODS = ("get", "post", "put", "patch", "delete")


def render_api_reference(document: dict[str, Any]) -> str:
    """The page of an OpenAPI document."""
    info = document.get("info", {})
    sections: list[str] = []
    for path, operations in document.get("paths", {}).items():
        for method in _METHODS:
            operation = operations.get(method)
            if operation is not None:
                sections.append(_operation(method, path, operation))
    return "\n".join(
        [
            "<!doctype html><html lang=en><head><meta charset=utf-8>",
            f"<title>{escape(str(info.get('title', 'API')))} · API reference</title>",
            f"<style>{STYLE}</style></head><body>",
            f"<p class=sub>{link('/', '← status page')}</p>",
            f"<h1>{escape(str(info.get('title', 'API')))} {escape(str(info.get('version', '')))}"
            "</h1>",
            f"<p class=sub>{escape(str(info.get('description', '')))}</p>",
            f"<p>The OpenAPI document: {link('/openapi.json', '/openapi.json')}. Bearer "
            "tokens go in <code>Authorization: Bearer …</code>; bodies are JSON "
            "(<code>Content-Type: application/json</code>).</p>",
            *sections,
            "</body></html>",
        ]
    )


def _operation(method: str, path: str, operation: dict[str, Any]) -> str:
    params = operation.get("parameters", [])
    rows = "".join(
        f"<tr><td><code>{escape(str(p.get('name')))}</code></td><td>{escape(str(p.get('in')))}"
        f"</td><td>{escape(str(p.get('description', '')))}</td></tr>"
        for p in params
    )
    table = (
        f"<table><tr><th>parameter</th><th>in</th><th>meaning</th></tr>{rows}</table>"
        if rows
        else ""
    )
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = body.get("schema", {}).get("$ref", "")
    body_text = (
        f"<p class=note>Body: <code>{escape(schema.rsplit('/', 1)[-1])}</code> (JSON)</p>"
        if schema
        else ""
    )
    summary = escape(str(operation.get("summary", "")))
    description = escape(str(operation.get("description", "")))
    ident = f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", "")
    return (
        f"<section class=operation id='{escape(ident)}'><h2><code>{method.upper()} "
        f"{escape(path)}</code></h2><p><b>{summary}</b> {description}</p>{table}{body_text}"
        "</section>"
    )

"""The self-contained HTML report (Jinja2): one file, all CSS and JS inline, no network access.

Safety: every string in the results may come from the SCP under test (AE titles, Error
Comments), so autoescaping is always on, no results data is ever placed inside <script>, and a
Content-Security-Policy allows only this page's own style and script (by SHA-256), so even a
string that slipped through could neither run code nor load anything.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from harness.report.files import atomic_write_text
from harness.report.view import build_view


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("harness.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@lru_cache(maxsize=1)
def _assets() -> tuple[str, str]:
    """The page's CSS and JS (static: they never contain results data)."""
    env = environment()
    assert env.loader is not None
    # Read as plain source, not rendered: CSS/JS braces must not meet Jinja syntax.
    style = env.loader.get_source(env, "report.css.j2")[0]
    script = env.loader.get_source(env, "report.js.j2")[0]
    if "</style" in style.lower() or "</script" in script.lower():
        raise RuntimeError("report assets must not contain </style or </script")
    return style, script


def content_security_policy() -> str:
    style, script = _assets()
    return "; ".join((
        "default-src 'none'",
        f"style-src {_csp_hash(style)}",
        f"script-src {_csp_hash(script)}",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ))


def render_html(
    results: Mapping[str, Any], baseline: Mapping[str, Any] | None = None
) -> str:
    """The report page for ``results`` (and a comparison with ``baseline``) as one string."""
    style, script = _assets()
    return environment().get_template("report.html.j2").render(
        v=build_view(results, baseline),
        style=Markup(style),
        script=Markup(script),
        csp=content_security_policy(),
    )


def write_html(
    results: Mapping[str, Any], path: Path, *, baseline: Mapping[str, Any] | None = None
) -> Path:
    """Write the report page to ``path`` (atomically) and return the path."""
    return atomic_write_text(Path(path), render_html(results, baseline))

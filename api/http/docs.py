"""Human documentation served by the app itself, so it works offline and installed.

* ``/docs`` (Swagger UI) and ``/redoc`` load their scripts from the app, not from a CDN: the
  assets ship in the ``fastapi-offline`` package (MIT), which is used for its files only.
* ``/problems/<slug>``: every problem's ``type`` URI resolves to a page describing it, taken
  from ``problems.md`` inside the package (the file everyone edits is ``openapi/problems.md``;
  ``api/http/problems.md`` links to it in a checkout and is a copy in a built package).
"""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

from api.problems import DomainError, NotFound, all_problem_classes

PROBLEMS_PAGE = Path(__file__).parent / "problems.md"
_ASSETS = Path(fastapi_offline.__file__).parent / "static"
_ASSET_NAMES = {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"}
_ASSETS_URL = "/docs/assets"
_SECTION = re.compile(r"^## `([a-z0-9-]+)`\n(.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)


def install_docs(app: FastAPI) -> None:
    """Add the documentation routes (outside the OpenAPI document). The app must be built
    with ``docs_url=None, redoc_url=None``."""

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{_ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API",
            redoc_js_url=f"{_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(_ASSETS_URL + "/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        if name not in _ASSET_NAMES:
            raise NotFound(detail="No resource at this address.")
        return FileResponse(_ASSETS / name, headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/problems/{slug}", include_in_schema=False)
    async def problem_page(slug: str) -> HTMLResponse:
        problem = _problem_types().get(slug)
        if problem is None:
            raise NotFound(detail="No problem type of this name.")
        return HTMLResponse(_page(problem, problem_descriptions().get(slug, "")))


@cache
def problem_descriptions() -> dict[str, str]:
    """slug → its markdown description, from the packaged ``problems.md`` (none when the
    file is missing: the pages then give the title and status alone)."""
    try:
        text = PROBLEMS_PAGE.read_text(encoding="utf-8")
    except OSError:
        return {}
    return {m.group(1): m.group(2).strip() for m in _SECTION.finditer(text)}


@cache
def _problem_types() -> dict[str, type[DomainError]]:
    return {cls.slug: cls for cls in reversed(all_problem_classes())}


def _page(problem: type[DomainError], description: str) -> str:
    slug = problem.slug
    paragraphs = "".join(f"<p>{_inline(p)}</p>" for p in description.split("\n\n") if p)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Problem {slug}</title></head><body>"
        f"<h1><code>{slug}</code></h1><p>{problem.status} — {html.escape(problem.title)}</p>"
        f"{paragraphs}"
        "<p>Every error is an RFC 9457 <code>application/problem+json</code> document whose "
        f"<code>type</code> is <code>/problems/{slug}</code> and <code>code</code> "
        f'<code>{slug}</code>. <a href="/docs">API documentation</a>.</p></body></html>'
    )


def _inline(markdown: str) -> str:
    """The little markdown problems.md uses: `code` and **bold**, the rest escaped."""
    escaped = html.escape(markdown.replace("\n", " "), quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)

"""Rendering pages: the template engine's set-up and the context every page gets."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined
from litestar import Request
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

from services.api.ui.formatting import FILTERS

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# What ?done=... after an action says; {n} is the count the action reported.
NOTICES = {
    "paused": "Paused: it will not fire until resumed.",
    "resumed": "Resumed.",
    "snoozed": "Snoozed: the next occurrence moved.",
    "canceled": "Canceled: it will never fire again.",
    "approved": "Approved: the run resumes.",
    "rejected": "Rejected: the run resumes and sees the rejection.",
    "retried": "Retried: the run is queued again.",
    "run_canceled": "Cancel requested.",
    "retried_all": "Retried {n} dead runs.",
    "signed_out": "Signed out.",
}


def _configure(engine: JinjaTemplateEngine) -> None:
    engine.engine.undefined = StrictUndefined  # a template typo fails the tests, not a reader
    engine.engine.filters.update(FILTERS)
    engine.engine.globals["form_nonce"] = lambda: secrets.token_urlsafe(16)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """The app's template set-up (one per app: the engine is built lazily and kept)."""
    return TemplateConfig(
        directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_configure
    )


def _notice(request: Request[Any, Any, Any]) -> str | None:
    text = NOTICES.get(request.query_params.get("done") or "")
    count = request.query_params.get("n") or "0"
    number = int(count) if count.isdigit() and len(count) <= 9 else 0
    return text.format(n=number) if text else None


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    """The page, with the session (if any), its CSRF token and any notice the URL carries."""
    session = request.scope.get("state", {}).get("ui_session")
    return Template(
        template_name=template,
        context={
            "session": session,
            "csrf": session.csrf if session else "",
            "path": request.url.path,
            "notice": _notice(request),
            **context,
        },
        status_code=status,
        headers=headers,
        media_type="text/html",
    )

"""Refusals as HTML pages (the API's own decisions on status and wording), and sign-in redirects."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.response import Redirect

from services.api.problems import EXCEPTION_HANDLERS
from services.api.ui.access import NotSignedIn
from services.api.ui.render import page
from services.problems.document import Problem

LOGIN = "/ui/login"


def _api_handler(exc: Exception) -> Any:
    for kind in type(exc).__mro__:
        if kind in EXCEPTION_HANDLERS:
            return EXCEPTION_HANDLERS[kind]
    return EXCEPTION_HANDLERS[Exception]


def html_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """What the API would answer (status, title, detail, fields), as a page."""
    answer = _api_handler(exc)(request, exc)
    problem: Problem = answer.content
    headers = {k: v for k, v in answer.headers.items() if k.lower() == "retry-after"}
    return page(request, "error.html", status=answer.status_code, headers=headers, problem=problem)


def not_signed_in(request: Request[Any, Any, Any], _: NotSignedIn) -> Response[Any]:
    """Pages send the visitor to sign in (and back); htmx polls follow; forms get a 401."""
    if request.headers.get("hx-request"):
        return Response(b"", status_code=401, headers={"HX-Redirect": LOGIN})
    if request.method in ("GET", "HEAD"):
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"{LOGIN}?next={quote(wanted, safe='')}", status_code=303)
    problem = Problem(
        type="urn:ordinaut:problem:unauthorized",
        title="Sign in first",
        status=401,
        detail="your session has ended; sign in again",
    )
    return page(request, "error.html", status=401, problem=problem)


# Every key the API maps (so none falls through to its JSON answer), plus the sign-in redirect.
UI_EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    **{key: html_problem for key in EXCEPTION_HANDLERS},
    NotSignedIn: not_signed_in,
}

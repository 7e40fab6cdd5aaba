"""Signing in with an agent token (or the admin token), and out."""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect, Template

from domain.rate_limits import retry_after_header
from services.api.auth_failures import too_many_failures
from services.api.state import AppState
from services.api.ui.access import PUBLIC
from services.api.ui.forms import posted
from services.api.ui.render import page
from services.api.ui.session import (
    COOKIE,
    LOGIN_COOKIE,
    close_session,
    login_cookie,
    open_session,
    session_cookie,
)
from services.application.errors import FieldError
from services.application.principal import principal_for
from services.problems.document import Problem
from services.runtime.admin_token import token_hash

# Where a sign-in may send the visitor next: dashboard pages only (no open redirect).
_LOCAL = re.compile(r"^/ui(?:[/?][^\\]*)?$")
TOKEN_MAX = 500


def _next(value: str | None) -> str:
    return value if value and _LOCAL.match(value) and "//" not in value else "/ui"


def _secure(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


def _form(
    request: Request[Any, Any, Any],
    *,
    status: int = 200,
    problem: Problem | None = None,
    wanted: str = "/ui",
    headers: dict[str, str] | None = None,
) -> Template:
    token = secrets.token_urlsafe(32)
    response = page(
        request,
        "login.html",
        status=status,
        headers=headers,
        login_csrf=token,
        wanted=wanted,
        problem=problem,
    )
    response.cookies.append(login_cookie(token, secure=_secure(request)))
    return response


@get("/login", opt=PUBLIC, name="ui_login")
async def login_form(request: Request[Any, Any, Any]) -> Template:
    """The sign-in form."""
    return _form(request, wanted=_next(request.query_params.get("next")))


def _refusal(field: str, reason: str, status: int) -> Problem:
    return Problem(
        type="urn:ordinaut:problem:sign-in",
        title="Not signed in",
        status=status,
        detail=f"{field}: {reason}",
        errors=[FieldError(field, reason)],
    )


@post("/login", opt=PUBLIC, status_code=303)
async def login(request: Request[Any, Any, Any], state: AppState) -> Response[Any]:
    """Check the token; on success open a session and go to the page asked for."""
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    expected = request.cookies.get(LOGIN_COOKIE, "")
    sent = fields.get("csrf_token", "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDeniedException("the sign-in form is out of date; reload it and try again")
    wanted = _next(fields.get("next"))
    token = fields.get("token", "").strip()
    if not token or len(token) > TOKEN_MAX:
        reason = f"enter an agent token (1 to {TOKEN_MAX} characters)"
        return _form(request, status=422, problem=_refusal("token", reason, 422), wanted=wanted)
    principal = await principal_for(token, state.admin_token_hash, state.pool)
    if principal is None:
        return _failed(request, wanted)
    session_id = await open_session(state.pool, token_hash(token), principal.actor)
    response = Redirect(wanted, status_code=303)
    response.cookies.append(session_cookie(session_id, secure=_secure(request)))
    response.cookies.append(login_cookie("", secure=_secure(request), max_age=0))
    return response


def _failed(request: Request[Any, Any, Any], wanted: str) -> Template:
    """The form again: 401, or 429 once this address has failed too often."""
    wait = too_many_failures(request)
    if wait is None:
        reason = "is not a valid token (unknown or revoked)"
        return _form(request, status=401, problem=_refusal("token", reason, 401), wanted=wanted)
    seconds = retry_after_header(wait)
    reason = f"too many failed sign-ins from this address; try again in {seconds} s"
    return _form(
        request,
        status=429,
        problem=_refusal("token", reason, 429),
        wanted=wanted,
        headers={"Retry-After": seconds},
    )


@post("/logout", status_code=303)
async def logout(request: Request[Any, Any, Any], state: AppState) -> Response[Any]:
    """End the session."""
    await posted(request)
    await close_session(state.pool, request.cookies.get(COOKIE, ""))
    response = Redirect("/ui/login?done=signed_out", status_code=303)
    response.cookies.append(session_cookie("", secure=_secure(request), max_age=0))
    return response

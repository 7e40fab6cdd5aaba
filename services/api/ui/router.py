"""The dashboard as one Litestar router at /ui: pages, actions, static files, its own errors."""

from __future__ import annotations

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from services.api.ui import actions, events, overview, runs, signin, tasks
from services.api.ui.access import PUBLIC, signed_in
from services.api.ui.errors import UI_EXCEPTION_HANDLERS
from services.api.ui.headers import security_headers
from services.api.ui.render import STATIC


def ui_router() -> Router:
    """Every /ui route: signed-in only (but the sign-in and static files), out of the schema."""
    static = create_static_files_router(
        path="/static",
        directories=[STATIC],
        opt=PUBLIC,
        name="ui_static",
        cache_control=CacheControlHeader(max_age=3600),
    )
    return Router(
        path="/ui",
        route_handlers=[
            signin.login_form,
            signin.login,
            signin.logout,
            overview.overview,
            tasks.task_list,
            tasks.task_page,
            runs.run_list,
            runs.retry_dead_check,
            runs.run_page,
            actions.task_action,
            actions.decide,
            actions.steer,
            actions.retry_all_dead,
            events.event_list,
            static,
        ],
        guards=[signed_in],
        middleware=[security_headers],
        exception_handlers=UI_EXCEPTION_HANDLERS,
        include_in_schema=False,
    )

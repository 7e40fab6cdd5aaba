"""Named secrets: store or replace, list without values, delete.

A secret is its owner's: the agent (holding ``secrets:write``) or the admin that stored its
name first. Only the admin shares one, naming the agents whose runs may use it (``agents``,
``["*"]`` for every agent; nobody unless named). An agent lists (``secrets:read``) the
secrets it owns or that are shared with it, and rotates or deletes only its own.

A value goes in once and never comes back out of the API: reads show names, which tools may
receive each secret, and times. Pipelines use a secret as ``${secrets.NAME}``.

Thin HTTP adapters over services/application/secrets.
"""

from __future__ import annotations

from litestar import Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from domain.secrets import READ_SCOPE, WRITE_SCOPE
from services.api.auth import requires
from services.api.calls import respond
from services.api.contract import problem_spec
from services.api.state import AppState
from services.application import secrets as ops
from services.application.context import Backend, Caller
from services.application.secrets import SecretBody, SecretList, SecretView


@post(
    "/secrets",
    guards=[requires(WRITE_SCOPE)],
    tags=["secrets"],
    summary="Store a secret",
    responses={
        200: ResponseSpec(SecretView, description="A secret of this name was replaced"),
        503: problem_spec("This API has no secret key configured"),
    },
)
async def store_secret(
    caller: NamedDependency[Caller],
    backend: NamedDependency[Backend],
    state: AppState,
    data: JSONBody[SecretBody],
) -> Response[SecretView]:
    """Record ``secret.stored`` (only the ciphertext): 201 for a new name, 200 to replace.

    The name's owner keeps it (409 for another agent); the admin names who may use it."""
    return respond(await ops.store_secret(caller, backend, state.secret_box, data))


@get("/secrets", guards=[requires(READ_SCOPE)], tags=["secrets"], summary="List secrets")
async def list_secrets(
    caller: NamedDependency[Caller], backend: NamedDependency[Backend]
) -> SecretList:
    """The secrets the caller may use (all for the admin): names, tools, times; never a value."""
    return await ops.list_secrets(caller, backend)


@delete(
    "/secrets/{name:str}",
    guards=[requires(WRITE_SCOPE)],
    tags=["secrets"],
    status_code=204,
    summary="Delete a secret",
)
async def delete_secret(
    caller: NamedDependency[Caller], backend: NamedDependency[Backend], name: FromPath[str]
) -> None:
    """Record ``secret.deleted``; steps that use the secret fail from now on. An agent
    deletes only its own (404 for any other, as for a name that does not exist)."""
    await ops.delete_secret(caller, backend, name)


ROUTES = [store_secret, list_secrets, delete_secret]

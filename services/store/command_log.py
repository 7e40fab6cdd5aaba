"""Set-based statements over ``command_log`` (idempotency keys and the results they
remember), shared by the writers that record many commands at once: the group committer and
publications. Callers pass keys sorted, so concurrent claims lock them in one order."""

from __future__ import annotations

from projections.base import Connection

# Claims each (actor, key) not claimed yet; returns the claimed ones (the others are taken).
CLAIM_KEYS = """
INSERT INTO command_log (actor, idempotency_key, fingerprint, result)
SELECT actor, key, fingerprint, 'null' FROM unnest($1::text[], $2::text[], $3::text[])
    AS c(actor, key, fingerprint)
ON CONFLICT DO NOTHING
RETURNING actor, idempotency_key
"""
# What the taken keys remember: their fingerprint and result.
PRIOR_RESULTS = """
SELECT c.actor, c.idempotency_key, c.fingerprint, c.result::text AS result
FROM command_log c JOIN unnest($1::text[], $2::text[]) AS k(actor, key)
    ON c.actor = k.actor AND c.idempotency_key = k.key
"""
# Keeps each claimed key's result, for its repeats.
REMEMBER_RESULTS = """
UPDATE command_log c SET result = r.result::jsonb
FROM unnest($1::text[], $2::text[], $3::text[]) AS r(actor, key, result)
WHERE c.actor = r.actor AND c.idempotency_key = r.key
"""


async def claim_keys(
    conn: Connection, actors: list[str], keys: list[str], fingerprints: list[str]
) -> set[tuple[str, str]]:
    """Reserve each (actor, key); the pairs this call claimed (the others were used before).

    A concurrent first use holds its row until it commits, so a repeat waits here and then
    finds the key used. Callers claim in one order, so two batches sharing keys never deadlock.
    """
    rows = await conn.fetch(CLAIM_KEYS, actors, keys, fingerprints)
    return {(r["actor"], r["idempotency_key"]) for r in rows}


async def prior_uses(
    conn: Connection, actors: list[str], keys: list[str]
) -> dict[tuple[str, str], tuple[str, str]]:
    """(actor, key) -> (fingerprint, result as JSON text: ``null`` when it was not kept)."""
    rows = await conn.fetch(PRIOR_RESULTS, actors, keys)
    return {(r["actor"], r["idempotency_key"]): (r["fingerprint"], r["result"]) for r in rows}


async def remember_results(
    conn: Connection, actors: list[str], keys: list[str | None], results: list[str]
) -> None:
    """Keep each key's result (JSON text) for the repeats that will ask for it."""
    await conn.execute(REMEMBER_RESULTS, actors, keys, results)

"""Ids as people type them: a whole id, or an unambiguous prefix of one.

Every command that takes a session, skill or paper strategy id resolves it here, so each
says the same thing for an unknown id and for a prefix that matches several.
"""

from __future__ import annotations

from collections.abc import Sequence

from stratlab.cli._common import CliError
from stratlab.models.records import SessionRecord
from stratlab.store.db import Pool
from stratlab.store.ids import id_matches, session_matches
from stratlab.store.sessions import SessionRepo

MIN_PREFIX = 4  # shorter prefixes match too much to be worth a lookup
SHOWN = 3  # candidates named in an "ambiguous" error


def ambiguous(what: str, ref: str, matches: Sequence[str]) -> CliError:
    listed = ", ".join(matches[:SHOWN]) + (", …" if len(matches) > SHOWN else "")
    return CliError(f"{what} {ref!r} is ambiguous: it matches {listed}; type more of it")


def _check_prefix(what: str, ref: str, hint: str) -> None:
    if len(ref) < MIN_PREFIX:
        raise CliError(f"no {what} {ref!r} (a prefix needs {MIN_PREFIX}+ characters); {hint}")


async def resolve_session(db: Pool, ref: str) -> SessionRecord:
    """A research session by session id, by the workflow id its row recorded
    (``research-<id>``, ``evaluate-<id>`` or a custom id) or by a unique prefix of either."""
    ref = ref.strip()
    repo = SessionRepo(db)
    hint = "`stratlab history` lists them"
    found = await repo.get(ref)
    if found is not None:
        return found
    matches = await session_matches(db, ref, limit=SHOWN + 1)
    exact = [sid for sid, wid in matches if wid == ref]
    if len(exact) == 1:
        chosen = exact[0]
    else:
        if not matches:
            raise CliError(f"no session {ref!r}; {hint}")
        _check_prefix("session", ref, hint)
        if len(matches) > 1:
            raise ambiguous("session prefix", ref, [sid for sid, _ in matches])
        chosen = matches[0][0]
    record = await repo.get(chosen)
    if record is None:  # deleted between the two reads
        raise CliError(f"no session {ref!r}; {hint}")
    return record


async def resolve_skill(db: Pool, ref: str) -> str:
    """A skill id from a skill id, the strategy id it came from, or a unique prefix."""
    ref, hint = ref.strip(), "`stratlab skills list` shows them"
    matches = await id_matches(db, "skill", ref, limit=SHOWN + 1)
    if ref in matches:
        return ref
    if not matches:
        raise CliError(f"no skill {ref!r}; {hint}")
    _check_prefix("skill", ref, hint)
    if len(matches) > 1:
        raise ambiguous("skill prefix", ref, matches)
    return matches[0]


async def resolve_paper(db: Pool, ref: str) -> str | None:
    """A paper strategy id from an id or a unique prefix; ``None`` when the store knows
    none (the workflow may still exist: the caller asks Temporal)."""
    ref = ref.strip()
    matches = await id_matches(db, "paper", ref, limit=SHOWN + 1)
    if ref in matches:
        return ref
    if not matches or len(ref) < MIN_PREFIX:
        return None
    if len(matches) > 1:
        raise ambiguous("paper strategy prefix", ref, matches)
    return matches[0]

"""Where outside data enters a workflow: its input and its signals' payloads.

``@validated_input`` sits under ``@workflow.run``. The run then receives its input as
plain JSON, parses it into the pydantic model its signature names, and refuses an
unknown field (at any depth), a wrong type, a value out of range or a missing required
field by failing the run at once with a non-retryable ``InvalidInput`` application error
that names every problem. Without it the pydantic converter's error fails the workflow
*task*, which Temporal retries forever while the run shows Running. An error anywhere
else is still left alone: a bug fails the workflow task so a fixed worker resumes it.

The same wrapper marks how every run ended: when the run fails or is cancelled, it sets
``StratlabOutcome`` and ``StratlabPhase`` before re-raising, so the UI's list never keeps
a stale phase. Terminated runs execute no workflow code; Temporal's own status shows them.

``signal_payload`` parses a signal's payload the same way and returns the error text
instead of raising, so the workflow can show it (query, current details) rather than drop
the signal with a line in the worker log.
"""

from __future__ import annotations

import asyncio
import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from workflows import constants as c

INVALID_INPUT = "InvalidInput"
# Commands added after histories were kept: runs recorded before replay without them.
END_ATTRIBUTES_PATCH = "end-search-attributes"

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)
RunT = TypeVar("RunT", bound=Callable[..., Awaitable[Any]])


# --- input ----------------------------------------------------------------------------


def validated_input(run: RunT) -> RunT:
    """Decorate a workflow's ``run(self, inp: SomeInput)`` (under ``@workflow.run``).

    Callers keep the typed signature; the worker sees ``run(self, *raw)``, so the payload
    reaches the workflow undecoded (no input at all counts as ``{}``) and is parsed here."""
    hints = typing.get_type_hints(run)
    params = [p for p in inspect.signature(run).parameters.values() if p.name != "self"]
    if len(params) != 1 or not _is_model(hints.get(params[0].name)):
        raise TypeError(f"{run.__qualname__} must take one pydantic model as its input")
    model: type[pydantic.BaseModel] = hints[params[0].name]
    workflow_name = run.__qualname__.split(".")[0]

    async def run_validated(self: Any, *raw: Any) -> Any:
        try:
            return await run(self, parse_input(model, raw, workflow_name))
        except (FailureError, asyncio.CancelledError, TimeoutError) as err:
            # These end the run (anything else fails only the task): say how it ended.
            mark_ended(*_ending(err))
            raise

    # Not functools.wraps: its __wrapped__ would make the SDK read the typed signature.
    for name in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(run_validated, name, getattr(run, name))
    run_validated.__annotations__ = {"raw": Any, "return": hints.get("return", Any)}
    return typing.cast(RunT, run_validated)


def parse_input(model: type[ModelT], raw: tuple[Any, ...], workflow_name: str) -> ModelT:
    """The run's input as ``model``, or a non-retryable ``InvalidInput`` failure."""
    if len(raw) > 1:
        raise _invalid(f"{workflow_name} takes one input (a JSON object), got {len(raw)}")
    data = raw[0] if raw else None
    if isinstance(data, model):  # a caller in this process (a subclass's run)
        return data
    parsed = validate(model, {} if data is None else data)
    if isinstance(parsed, str):
        raise _invalid(
            f"invalid {workflow_name} input: {parsed}. "
            f"Fields of {model.__name__}: {', '.join(model.model_fields)}"
        )
    return parsed


def validate(model: type[ModelT], data: Any) -> ModelT | str:
    """``data`` as a ``model``, or every reason it is not one, on one line."""
    problems = [f"{path}: unknown field" for path in unknown_fields(model, data)]
    try:
        parsed = model.model_validate(data)
    except pydantic.ValidationError as err:
        problems += [_error_line(e) for e in err.errors(include_url=False)]
    return "; ".join(problems) if problems else parsed


def unknown_fields(model: type[pydantic.BaseModel], data: Any, where: str = "") -> list[str]:
    """Dotted paths of the keys in ``data`` that no field of ``model`` (or of a nested
    model) declares. Checked here, not with ``extra="forbid"`` on the models, because the
    same models are read back from the database and from LLM answers with extra keys."""
    if not isinstance(data, Mapping):
        return []
    found: list[str] = []
    for key, value in data.items():
        field = model.model_fields.get(str(key))
        if field is None:
            found.append(f"{where}{key}")
        else:
            found += _unknown_in(field.annotation, value, f"{where}{key}")
    return found


def _unknown_in(annotation: Any, value: Any, path: str) -> list[str]:
    if _is_model(annotation):
        return unknown_fields(annotation, value, f"{path}.")
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        model = next((a for a in args if _is_model(a)), None)
        return _unknown_in(model, value, path) if model and isinstance(value, Mapping) else []
    if origin in (list, tuple, set, frozenset) and args and isinstance(value, list):
        items: list[tuple[Any, Any]] = list(enumerate(value))
    elif origin is dict and len(args) == 2 and isinstance(value, Mapping):
        items = list(value.items())
    else:
        return []
    return [u for key, item in items for u in _unknown_in(args[-1], item, f"{path}.{key}")]


def _is_model(annotation: Any) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel)


def _error_line(error: Any) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "input"
    line = f"{path}: {error['msg']}"
    given = error.get("input")
    if error["type"] != "missing" and isinstance(given, str | int | float | bool):
        line += f" (got {given!r})"[:80]
    return line


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_INPUT, non_retryable=True)


# --- signals --------------------------------------------------------------------------


def signal_payload(
    model: type[ModelT], payload: tuple[Any, ...], *, text_field: str | None = None
) -> ModelT | str:
    """A signal's payload as ``model``, or the reason it is unusable. No payload or
    ``null`` is ``{}``; with ``text_field`` a bare string means ``{text_field: string}``."""
    if len(payload) > 1:
        return f"one payload expected, got {len(payload)}"
    data = payload[0] if payload else None
    if data is None:
        data = {}
    elif text_field is not None and isinstance(data, str):
        data = {text_field: data}
    parsed = validate(model, data)
    return f"{parsed} (payload {str(data)[:120]})" if isinstance(parsed, str) else parsed


# --- how a run ended -------------------------------------------------------------------


def mark_ended(outcome: str, phase: str) -> None:
    """Publish a finished run's outcome and final phase as search attributes."""
    if workflow.patched(END_ATTRIBUTES_PATCH):
        workflow.upsert_search_attributes(
            [c.SA_OUTCOME.value_set(outcome), c.SA_PHASE.value_set(phase)]
        )


def _ending(err: BaseException) -> tuple[str, str]:
    if isinstance(err, asyncio.CancelledError | CancelledError):
        workflow.set_current_details("**cancelled**")
        return "cancelled", "cancelled"
    workflow.set_current_details(f"**failed** · {_failure_text(err)[:500]}")
    if isinstance(err, ApplicationError) and err.type == INVALID_INPUT:
        return "invalid_input", "failed"
    return "error", "failed"


def _failure_text(err: BaseException) -> str:
    """The failure and its first cause: "Activity task failed: <why>"."""
    if not isinstance(err, FailureError):
        return str(err) or type(err).__name__
    cause = err.cause
    return f"{err.message}: {cause.message}" if isinstance(cause, FailureError) else err.message

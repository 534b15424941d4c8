"""Turn a model's answer text into a pydantic model, or say in one line why not.

Models wrap JSON in prose, in ```json fences, or in reasoning blocks; this module finds
the object and validates it. The reason in ``MalformedOutputError`` is stored with the
call and fed back to the designer, so it is short and specific.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)

MAX_OUTPUT_CHARS = 1_000_000
"""Answers longer than this are rejected before any scanning (no model answers 1 MB)."""
MAX_SCHEMA_ERRORS = 5

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n(.*?)```", re.DOTALL)
# Reasoning models served through OpenAI-compatible servers may prefix their answer
# with a <think> block that can itself contain braces.
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_MAX_CANDIDATES = 20


class MalformedOutputError(ValueError):
    """The answer holds no valid instance of the requested model; the message is one line."""


def parse_structured(text: str, model: type[T]) -> T:
    """Parse ``text`` (plain JSON, fenced JSON, or JSON inside prose) into ``model``."""
    if len(text) > MAX_OUTPUT_CHARS:
        raise MalformedOutputError(
            f"output is {len(text):,} characters; the limit is {MAX_OUTPUT_CHARS:,}"
        )
    data = extract_json_object(text)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedOutputError(f"schema errors: {summarise_errors(exc)}") from exc


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``: whole text, then fences, then balanced braces."""
    cleaned = _THINK.sub("", text)
    stripped = cleaned.strip()
    if not stripped:
        raise MalformedOutputError("no JSON found: the output is empty")
    if stripped.startswith("{"):
        try:
            return _as_object(json.loads(stripped))
        except json.JSONDecodeError:
            pass  # maybe prose or a second object follows; the scan below finds it
    for fence in _FENCE.finditer(cleaned):
        body = fence.group(1).strip()
        if body.startswith("{"):
            try:
                return _as_object(json.loads(body))
            except json.JSONDecodeError as exc:
                start = fence.start(1) + fence.group(1).index("{")
                raise _invalid(exc, start) from exc
    return _scan(cleaned)


def _scan(text: str) -> dict[str, Any]:
    """Try each balanced top-level ``{...}`` in turn; report the first one's error."""
    first_error: MalformedOutputError | None = None
    position = text.find("{")
    if position < 0:
        raise MalformedOutputError("no JSON found: the output contains no '{'")
    for _ in range(_MAX_CANDIDATES):
        if position < 0:
            break
        end = _balanced_end(text, position)
        if end is None:
            first_error = first_error or MalformedOutputError(
                f"invalid JSON at char {position}: unbalanced braces (truncated output?)"
            )
            break
        try:
            return _as_object(json.loads(text[position:end]))
        except json.JSONDecodeError as exc:
            first_error = first_error or _invalid(exc, position)
        position = text.find("{", end)
    assert first_error is not None
    raise first_error


def _balanced_end(text: str, start: int) -> int | None:
    """Index after the brace closing the one at ``start``, honouring JSON strings."""
    depth = 0
    in_string = False
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def _as_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedOutputError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _invalid(exc: json.JSONDecodeError, offset: int) -> MalformedOutputError:
    return MalformedOutputError(f"invalid JSON at char {offset + exc.pos}: {exc.msg}")


def summarise_errors(exc: ValidationError, limit: int = MAX_SCHEMA_ERRORS) -> str:
    """'field.path: message; ...' for at most ``limit`` errors, then '(+N more)'."""
    errors = exc.errors(include_url=False)
    parts = []
    for error in errors[:limit]:
        path = ".".join(str(part) for part in error["loc"]) or "(root)"
        message = " ".join(str(error["msg"]).split())
        parts.append(f"{path}: {message}"[:200])
    more = len(errors) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")

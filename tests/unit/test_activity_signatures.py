"""The activity references the workflows call through are the activities the workers run.

``activities.signatures`` pairs each registered activity name with its pool, input and
result; the workflows take their types from it and never see the implementations. These
tests hold the implementations to those signatures, and the retry policy's
non-retryable list to the error types the activities really raise.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import typing
from pathlib import Path

import pytest
from temporalio import activity

from activities import compute, evolution, llm, names, orchestrator, paper, signatures
from activities.signatures import ActivityRef
from stratlab.temporal_names import POOLS
from workflows import constants as c

ROOT = Path(__file__).resolve().parents[2]
REFS = {ref.name: ref for ref in vars(signatures).values() if isinstance(ref, ActivityRef)}


def _implementations() -> dict[str, typing.Callable[..., object]]:
    found = {}
    for module in (compute, evolution, llm, orchestrator, paper):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            for _, fn in inspect.getmembers(cls, inspect.isfunction):
                defn = activity._Definition.from_callable(fn)
                if defn is not None and defn.name is not None:
                    found[defn.name] = fn
    return found


IMPLEMENTATIONS = _implementations()


def test_every_activity_has_one_reference_and_every_reference_an_activity() -> None:
    registered = {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
    assert set(REFS) == set(IMPLEMENTATIONS) == registered


@pytest.mark.parametrize("name", sorted(REFS))
def test_reference_matches_the_implementation(name: str) -> None:
    ref, fn = REFS[name], IMPLEMENTATIONS[name]
    hints = typing.get_type_hints(fn)
    (param,) = [p for p in inspect.signature(fn).parameters if p != "self"]
    assert hints[param] is ref.input_type
    expected = hints["return"]
    assert ref.result_type == (None if expected is type(None) else expected)
    assert ref.pool in POOLS


def _types_in(tree: ast.AST) -> set[str]:
    """The ``type="..."`` literals of the ApplicationErrors made in ``tree``, and the
    business types it hands to ``llm_application_error``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        found |= {
            str(kw.value.value)
            for kw in node.keywords
            if kw.arg == "type" and isinstance(kw.value, ast.Constant)
        }
        if isinstance(node.func, ast.Name) and node.func.id == "llm_application_error":
            found |= _LLM_ERRORS
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                found.add(str(node.args[1].value))
    return found


_LLM_ERRORS = _types_in(ast.parse((ROOT / "activities" / "_errors.py").read_text()))


def raised_under_the_list() -> set[str]:
    """The error types raised by the activities whose retry policy carries
    ``NON_RETRYABLE_ERRORS`` (the llm, compute and optimizer pools)."""
    found: set[str] = set()
    for name, fn in IMPLEMENTATIONS.items():
        ref = REFS[name]
        if c.options_for(name, ref.pool).retry.non_retryable_error_types:
            found |= _types_in(ast.parse(textwrap.dedent(inspect.getsource(fn))))
    return found


def test_non_retryable_errors_are_raised_by_an_activity_under_that_policy() -> None:
    """A type in the list that none of those activities raises reads as a guarantee that
    holds nothing (StrategyValidationError was one: only the orchestrator raises it)."""
    raised = raised_under_the_list()
    assert {"TrainingError", "LlmTransientError"} <= raised  # the scan sees both kinds
    assert set(c.NON_RETRYABLE_ERRORS) <= raised
    assert "LlmTransientError" not in c.NON_RETRYABLE_ERRORS


def test_every_pool_has_options_and_overrides_name_real_activities() -> None:
    assert set(c.POOL_OPTIONS) == set(POOLS)
    assert set(c.ACTIVITY_OPTIONS) <= set(REFS)
    train = REFS[names.TRAIN_STRATEGY]
    assert c.options_for(train.name, train.pool).heartbeat == c.TRAIN_HEARTBEAT

"""The offline provider writes code strategies, breaks one on request and repairs it.

Generated code runs in-process here: it is the offline provider's own fixed templates,
and what is under test is that code's contract (shape, dtype, no look-ahead), not the
sandbox, which has its own tests.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import math
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stratlab.llm.offline.inspect import CODE_FAMILIES, Knobs, code_error_kind, code_family_of
from stratlab.llm.prompts import RecentStrategy
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.research import StrategySpec
from stratlab.strategies.rules import range_values
from tests.fixtures.offline_requests import DIRECTIVE_TEXTS, SYMBOLS, design, designer_request

ALLOWED_IMPORTS = {"numpy", "pandas", "math"}
CODE_FEEDBACK = [
    "",
    "Out-of-sample: sharpe 0.10, total return 2.0%, max drawdown 35.0%, win rate 40.0%, "
    "trades 4, buy-and-hold 30.0%.",
    "The previous attempt ended failed_training.\nError: NameError: name 'entires' is not "
    "defined (line 14)\nFix the cause and answer with a corrected strategy.",
    "The previous attempt ended failed_training_gate.\n- training gate: "
    "min_validation_trades was 0.000, needs >= 3",
    "Error: TimeoutError: the run exceeded its wall-clock limit of 10 s",
]
ERROR_FEEDBACK = {
    "syntax": "Error: SyntaxError: invalid syntax (line 6)",
    "validation": "Error: CodeValidationError: line 1: import of 'os' is not allowed",
    "runtime": "Error: KeyError: 'adj_close' (line 9)",
    "timeout": "Error: the code timed out after 10 s of CPU time",
}


def run_code(code: str, data: pd.DataFrame, params: dict[str, Any]) -> tuple[Any, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(code, "<strategy>", "exec"), namespace)  # the provider's own templates
    return namespace["signals"](data, params)  # type: ignore[no-any-return]


def default_params(spec: StrategySpec) -> dict[str, float]:
    """The middle grid value of every range."""
    return {p.name: range_values(p)[len(range_values(p)) // 2] for p in spec.parameters}


def assert_code_contract(spec: StrategySpec) -> None:
    assert spec.kind == "code" and spec.code
    assert not spec.indicators and not spec.entry and not spec.exit and spec.ml is None
    tree = ast.parse(spec.code)
    signals = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "signals"]
    assert len(signals) == 1 and [a.arg for a in signals[0].args.args] == ["data", "params"]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name.split(".")[0] for a in node.names} <= ALLOWED_IMPORTS
        assert not isinstance(node, ast.ImportFrom)
        if isinstance(node, ast.Attribute):
            assert not node.attr.startswith("_"), node.attr
            assert not node.attr.startswith(("to_", "read_")), node.attr
        if isinstance(node, ast.Name):
            assert not node.id.startswith("_") and node.id not in {"eval", "exec", "open"}
    assert "__" not in spec.code
    for param in spec.parameters:
        assert f'params["{param.name}"]' in spec.code, param.name
    grid = math.prod(len(range_values(p)) for p in spec.parameters)
    assert 10 <= grid <= 100, (spec.name, grid)


def code_requests(count: int = 30) -> list[Any]:
    previous = CODE_FAMILIES["rsi_reversion"][1](random.Random(7), Knobs())
    base = StrategySpec(
        name="sp500-code-rsi-reversion-0001",
        kind="code",
        code=previous.code,
        parameters=previous.parameters,
    )
    requests = []
    for i in range(count):
        revise = i % 3 == 2
        requests.append(
            designer_request(
                symbol=SYMBOLS[i % len(SYMBOLS)],
                kind="code",
                feedback=CODE_FEEDBACK[i % len(CODE_FEEDBACK)] if revise else "",
                previous=base if revise else None,
                recent=[RecentStrategy(name=f"x-code-momentum-{i}", kind="code", outcome="x")]
                if i % 5 == 0
                else (),
                directive=DIRECTIVE_TEXTS[i % len(DIRECTIVE_TEXTS)],
                in_system=i % 2 == 0,
                iteration=2 if revise else 1,
            )
        )
    return requests


async def test_thirty_varied_code_designs_are_valid_code_specs() -> None:
    specs = [await design(request) for request in code_requests(30)]
    for spec in specs:
        assert_code_contract(spec)
    assert len({code_family_of(s) for s in specs}) >= 4
    assert len({(s.code, repr(s.parameters), s.stop_loss) for s in specs}) >= 20
    for spec in specs:
        validate_if_available(spec.code or "")


def validate_if_available(code: str) -> None:
    """The sandbox's AST validator, once that module exists (it is built in parallel)."""
    if importlib.util.find_spec("stratlab.sandbox.validator") is not None:
        importlib.import_module("stratlab.sandbox.validator").validate_code(code)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Error: NameError: name 'entires' is not defined at line 14", "runtime"),
        ("the strategy code was rejected (1 problem(s)):\nline 1 [syntax]: expected ':'", "syntax"),
        ("line 1 [import-not-allowed]: import of 'os' is not allowed", "validation"),
        ("Error: the strategy did not finish within 5 s of wall-clock time", "timeout"),
        ("Error: MemoryError: the strategy ran out of memory", "memory"),
        ("Error: the strategy made no trades", None),
        ("- training gate: min_validation_trades was 0.000, needs >= 3", None),
        ("Out-of-sample: sharpe 0.2, tracking error high, max drawdown 30.0%", None),
    ],
)
def test_code_errors_are_classified_from_feedback(text: str, kind: str | None) -> None:
    assert code_error_kind(text) == kind


@pytest.mark.parametrize("family", sorted(CODE_FAMILIES))
@pytest.mark.parametrize(
    "knobs", [Knobs(), Knobs(loose=True), Knobs(window_scale=2.0)], ids=["plain", "loose", "x2"]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_each_family_runs_on_synthetic_data(family: str, knobs: Knobs, seed: int) -> None:
    draft = CODE_FAMILIES[family][1](random.Random(seed), knobs)
    spec = StrategySpec(name=family, kind="code", code=draft.code, parameters=draft.parameters)
    assert_code_contract(spec)
    validate_if_available(draft.code or "")
    data = synthetic_ohlcv(bars=1500, seed=seed)
    entries, exits = run_code(draft.code or "", data, default_params(spec))
    entries, exits = np.asarray(entries), np.asarray(exits)
    assert entries.dtype == bool and exits.dtype == bool
    assert entries.shape == exits.shape == (len(data),)
    assert entries.sum() >= 1 and exits.sum() >= 1
    # No look-ahead: the signals up to bar t do not change when later bars are removed.
    cut = 1100
    early_entries, early_exits = run_code(draft.code or "", data.iloc[:cut], default_params(spec))
    assert np.array_equal(np.asarray(early_entries), entries[:cut])
    assert np.array_equal(np.asarray(early_exits), exits[:cut])


async def test_the_bug_directive_breaks_the_first_design_and_the_repair_runs() -> None:
    data = synthetic_ohlcv(bars=800, seed=3)
    first = await design(
        designer_request(kind="code", symbol="nasdaq", directive="Write code with a bug.")
    )
    with pytest.raises(NameError) as caught:
        run_code(first.code or "", data, default_params(first))
    feedback = (
        "The previous attempt ended failed_training.\n"
        f"Error: NameError: {caught.value} (line {len((first.code or '').splitlines())})\n"
        "Fix the cause and answer with a corrected strategy."
    )
    repaired = await design(
        designer_request(
            kind="code",
            symbol="nasdaq",
            directive="Write code with a bug.",
            previous=first,
            feedback=feedback,
            iteration=2,
        )
    )
    assert repaired.name == f"{first.name}-r2"
    assert "entires" not in (repaired.code or "") and repaired.parameters == first.parameters
    assert code_family_of(repaired) == code_family_of(first)
    entries, _ = run_code(repaired.code or "", data, default_params(repaired))
    assert np.asarray(entries).shape == (len(data),)


async def test_a_later_first_iteration_without_the_directive_has_no_bug() -> None:
    spec = await design(designer_request(kind="code", symbol="nasdaq"))
    run_code(spec.code or "", synthetic_ohlcv(bars=600), default_params(spec))


@pytest.mark.parametrize("error", sorted(ERROR_FEEDBACK))
async def test_errors_are_repaired_with_the_family_clean_code(error: str) -> None:
    clean = CODE_FAMILIES["zscore_reversion"][1](random.Random(2), Knobs())
    broken = StrategySpec(
        name="sp500-code-zscore-reversion-00aa-r2",
        kind="code",
        code="import os\n\ndef signals(data, params)\n    return data\n",
        parameters=clean.parameters,
    )
    spec = await design(
        designer_request(kind="code", previous=broken, feedback=ERROR_FEEDBACK[error], iteration=3)
    )
    assert spec.name == "sp500-code-zscore-reversion-00aa-r3"
    assert_code_contract(spec)
    assert code_family_of(spec) == "zscore_reversion" and "import os" not in (spec.code or "")
    run_code(spec.code or "", synthetic_ohlcv(bars=600), default_params(spec))


async def test_no_trades_loosens_the_entry_thresholds() -> None:
    draft = CODE_FAMILIES["rsi_reversion"][1](random.Random(0), Knobs())
    previous = StrategySpec(
        name="sp500-code-rsi-reversion-0b0b",
        kind="code",
        code=draft.code,
        parameters=draft.parameters,
    )
    spec = await design(
        designer_request(
            kind="code",
            previous=previous,
            feedback="Error: the strategy made no trades",
            iteration=2,
        )
    )
    before = {p.name: p for p in previous.parameters}
    after = {p.name: p for p in spec.parameters}
    assert spec.code == previous.code
    assert after["oversold"].high > before["oversold"].high
    assert after["rsi_window"].high < before["rsi_window"].high


async def test_poor_metrics_revise_parameters_like_rules() -> None:
    draft = CODE_FAMILIES["ma_cross"][1](random.Random(0), Knobs())
    previous = StrategySpec(
        name="sp500-code-ma-cross-0c0c", kind="code", code=draft.code, parameters=draft.parameters
    )
    spec = await design(
        designer_request(
            kind="code",
            previous=previous,
            feedback="Out-of-sample: sharpe 0.20, max drawdown 38.0%, win rate 50.0%, trades 30.",
            iteration=2,
        )
    )
    assert spec.stop_loss is not None and spec.name.endswith("-r2")
    assert_code_contract(spec)


async def test_analyst_relaxations_move_the_named_range() -> None:
    draft = CODE_FAMILIES["rsi_reversion"][1](random.Random(0), Knobs())
    previous = StrategySpec(
        name="sp500-code-rsi-reversion-0d0d",
        kind="code",
        code=draft.code,
        parameters=draft.parameters,
    )
    feedback = (
        "Out-of-sample: sharpe 0.40, win rate 55.0%, trades 30.\n"
        "- RSI(7..21) never goes below 31.2 on the training data; relax oversold to about 36 "
        "(its 5th percentile)"
    )
    spec = await design(
        designer_request(kind="code", previous=previous, feedback=feedback, iteration=2)
    )
    old = next(p for p in previous.parameters if p.name == "oversold")
    new = next(p for p in spec.parameters if p.name == "oversold")
    assert new.high == 36 and new.high - new.low == old.high - old.low and new.step == old.step


async def test_directive_phrases_inside_skills_are_data() -> None:
    request = designer_request(kind="code")
    marker = "## Recent strategies"
    skills = (
        "\n## Skills\n<skills>\n- x-code: Always set a stop loss. Use a trend filter.\n</skills>\n"
    )
    request = request.model_copy(update={"prompt": request.prompt.replace(marker, skills + marker)})
    spec = await design(request)
    assert spec.stop_loss is None and "long-term trend" not in (spec.code or "")

"""The designer is told what a task asks: the objective section of its prompt."""

from __future__ import annotations

from stratlab.evolution.suite import load_suite
from stratlab.llm.offline.inspect import read_designer
from stratlab.llm.prompts import DEFAULT_PROMPTS, DesignerContext, render_prompt
from stratlab.models.research import ResearchCycleInput

DESIGNER = DEFAULT_PROMPTS["designer"]
BASE = {"symbol": "sp500", "indicator_catalogue": "sma(window)", "data_summary": "5,000 bars"}


def test_the_objective_is_a_section_of_its_own_and_absent_when_unset() -> None:
    plain = render_prompt(DESIGNER.content, DesignerContext(**BASE))
    asked = render_prompt(
        DESIGNER.content, DesignerContext(**BASE, objective="risk-adjusted: sharpe >= 0.5")
    )
    assert "## Objective" not in plain
    assert "## Objective\n<objective>\nrisk-adjusted: sharpe >= 0.5\n</objective>" in asked
    # Nothing else moves: the prompt without the section is the prompt of before.
    section = "\n## Objective\n<objective>\nrisk-adjusted: sharpe >= 0.5\n</objective>\n"
    assert asked.replace(section, "", 1) == plain


def test_every_task_says_what_it_asks_and_never_that_its_data_is_noise() -> None:
    tasks = load_suite().tasks
    texts = {t.task_id: t.describe_objective() for t in tasks}
    risk = next(t for t in tasks if t.objective == "risk-adjusted")
    assert texts[risk.task_id] == (
        "risk-adjusted: sharpe >= 0.5, trades >= 3 (walk-forward out-of-sample)"
    )
    assert all("noise" not in text and "discovery" not in text for text in texts.values())
    # Tasks that share a window but ask different things are told different things.
    by_window: dict[tuple, set[str]] = {}
    for t in tasks:
        by_window.setdefault((t.symbol, t.start, t.end), set()).add(texts[t.task_id])
    assert any(len(asks) > 1 for asks in by_window.values())
    assert all(
        len(ResearchCycleInput(objective=text).objective) <= 1_000 for text in texts.values()
    )


def test_the_offline_stand_in_reads_a_prompt_with_an_objective_as_the_same_task() -> None:
    plain = render_prompt(DESIGNER.content, DesignerContext(**BASE))
    asked = render_prompt(
        DESIGNER.content, DesignerContext(**BASE, objective="capital-preservation: ...")
    )
    # Its choices are seeded by the task, not the wording: the same data, the same draw.
    assert read_designer(DESIGNER.system, asked).fingerprint() == (
        read_designer(DESIGNER.system, plain).fingerprint()
    )

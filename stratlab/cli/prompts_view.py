"""Bodies of the prompt registry's read commands: list, show, diff and lineage (read
only: no LLM call, no Temporal). Generations and the Pareto front: ``generations_view``."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from typing import Any, get_args

from rich import box
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from stratlab.cli._common import CliError, console, fmt_time, fmt_usd, print_json, store
from stratlab.config import Settings
from stratlab.models.llm import Role
from stratlab.models.optimization import FITNESS_VERSION, ExperimentRecord, Fitness
from stratlab.models.prompts import PromptRecord, PromptTag
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.prompts import PromptRepo

ROLES: tuple[str, ...] = get_args(Role)
TAGS: tuple[str, ...] = get_args(PromptTag)
MIN_PREFIX = 6  # shorter prefixes match too much to be worth a lookup


# --- shared helpers --------------------------------------------------------------------------


def check_choice(what: str, value: str | None, choices: Sequence[str]) -> None:
    """One-line error for an option outside its choices (typer takes them as free text)."""
    if value is not None and value not in choices:
        raise CliError(f"unknown {what} {value!r}; {what}s are: {', '.join(choices)}")


def short(prompt_id: str | None) -> str:
    return "—" if prompt_id is None else prompt_id[:8]


FITNESS_COLUMNS = ("score", "success", "tokens", "latency")
"""The columns of ``fitness_cells``: score is what selection climbs (the mean graded task
score: deflated Sharpe probability × criteria met, on noise 1 − it), success the share of
tasks passed, then mean tokens and LLM latency per task."""


def fitness_cells(fitness: Fitness | None) -> tuple[str, str, str, str]:
    """(score, success, tokens, latency) as table cells; a fitness measured before scores
    existed shows no score."""
    if fitness is None:
        return ("—", "—", "—", "—")
    return (
        f"{fitness.score:.3f}" if fitness.version >= FITNESS_VERSION else "—",
        f"{fitness.success_rate:.0%}",
        f"{fitness.mean_tokens:,.0f}",
        f"{fitness.mean_latency_ms / 1000:,.1f} s",
    )


def compact_table(title: str) -> Table:
    """A table without side borders: with the fitness columns it still fits 80 columns."""
    return Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False
    )


def add_fitness_columns(table: Table) -> None:
    for col in FITNESS_COLUMNS:
        table.add_column(col, justify="right", no_wrap=True)


def fitness_text(fitness: Fitness | None) -> str:
    if fitness is None:
        return "not measured"
    score, success, tokens, latency = fitness_cells(fitness)
    return (
        f"score {score}{interval_text(fitness)} · success {success} · {tokens} tokens · {latency}"
    )


def interval_text(fitness: Fitness) -> str:
    """The score's 95% interval over rollouts, when there were enough to measure one (the
    JSON's ``score_low`` / ``score_high`` are null otherwise)."""
    if fitness.score_low is None or fitness.score_high is None:
        return ""
    return f" ({fitness.score_low:.3f}–{fitness.score_high:.3f})"


async def resolve_prompt(repo: PromptRepo, ref: str) -> PromptRecord:
    """A prompt by full id or by a unique id prefix of at least ``MIN_PREFIX`` characters;
    ``CliError`` otherwise (for approve/reject too)."""
    found = await repo.get(ref)
    if found is not None:
        return found
    hint = "`stratlab prompts list` shows the ids"
    if len(ref) < MIN_PREFIX:
        raise CliError(f"no prompt {ref!r} (a prefix needs {MIN_PREFIX}+ characters); {hint}")
    matches = await repo.by_prefix(ref, limit=4)
    if not matches:
        raise CliError(f"no prompt {ref!r}; {hint}")
    if len(matches) > 1:
        listed = ", ".join(p.id for p in matches[:3]) + (", …" if len(matches) > 3 else "")
        raise CliError(f"prompt prefix {ref!r} is ambiguous: it matches {listed}")
    return matches[0]


def _fitness_of(experiments: dict[str, ExperimentRecord], prompt_id: str) -> Fitness | None:
    found = experiments.get(prompt_id)
    return None if found is None else found.fitness


# --- prompts list / show / diff / lineage ------------------------------------------------------


async def list_prompts(
    cfg: Settings, *, role: str | None, tag: str | None, limit: int, as_json: bool
) -> None:
    check_choice("role", role, ROLES)
    check_choice("tag", tag, TAGS)
    async with store(cfg) as db:
        prompts = await PromptRepo(db).list(role=role, tag=tag, limit=limit)  # type: ignore[arg-type]
        fitness = await ExperimentRepo(db).latest_fitness([p.id for p in prompts])
    if as_json:
        print_json(
            [
                {
                    **p.model_dump(mode="json"),
                    "fitness": _fitness_of(fitness, p.id),
                    "experiment_id": fitness[p.id].experiment_id if p.id in fitness else None,
                }
                for p in prompts
            ]
        )
        return
    if not prompts:
        console.print("no prompts match")
        return
    console.print(prompts_table(prompts, fitness))


def prompts_table(
    prompts: Sequence[PromptRecord], experiments: dict[str, ExperimentRecord]
) -> Table:
    """Prompts with their latest fitness, narrow enough for 80 columns."""
    # Parents, version and creation time: `prompts show`, `lineage` and --json.
    table = compact_table(f"Prompts ({len(prompts)})")
    for col in ("id", "role", "tag", "gen"):
        table.add_column(col, no_wrap=True)
    add_fitness_columns(table)
    for p in prompts:
        table.add_row(
            short(p.id),
            p.role,
            p.tag or "—",
            "—" if p.generation is None else str(p.generation),
            *fitness_cells(_fitness_of(experiments, p.id)),
        )
    return table


async def show_prompt(cfg: Settings, ref: str, *, as_json: bool) -> None:
    async with store(cfg) as db:
        repo = PromptRepo(db)
        prompt = await resolve_prompt(repo, ref)
        metadata = await repo.metadata(prompt.id) or {}
        tags = await repo.tags(prompt.id)
        experiments = await ExperimentRepo(db).by_prompt(prompt.id)
    if as_json:
        print_json(
            {"prompt": prompt, "metadata": metadata, "tags": tags, "experiments": experiments}
        )
        return
    gen = "—" if prompt.generation is None else prompt.generation
    console.print(
        Text.assemble(
            ("prompt ", "bold"),
            (prompt.id, "bold cyan"),
            f"  {prompt.role} v{prompt.version}, tag {prompt.tag or '—'}\n",
            f"generation {gen} · parents {', '.join(prompt.parent_ids) or '—'} · ",
            f"created {fmt_time(prompt.created_at)} · hash {prompt.content_hash[:12]}",
        )
    )
    if metadata:
        console.print(Text(f"metadata: {json.dumps(metadata, sort_keys=True)}"))
    history = Table("time", "tag", "actor", "reason", title="Tag history")
    for e in tags:
        history.add_row(fmt_time(e.created_at), e.tag, e.actor, e.reason)
    console.print(history)
    console.print(experiments_table(experiments))
    console.print(Panel(Text(prompt.system or "(empty)"), title="system", title_align="left"))
    template = Syntax(prompt.content, "jinja", word_wrap=True, theme="ansi_dark")
    console.print(Panel(template, title="template (Jinja2)", title_align="left"))


def experiments_table(experiments: Iterable[ExperimentRecord]) -> Table:
    # Generation and finish time: --json.
    table = compact_table("Experiments")
    table.add_column("id", no_wrap=True)
    table.add_column("status", overflow="fold")
    table.add_column("tasks", justify="right", no_wrap=True)
    add_fitness_columns(table)
    table.add_column("cost", justify="right", no_wrap=True)
    for e in experiments:
        tasks = str(len(e.task_ids)) + (f"×{e.rollouts}" if e.rollouts > 1 else "")
        table.add_row(
            short(e.experiment_id),
            e.status,
            tasks,
            *fitness_cells(e.fitness),
            fmt_usd(e.fitness.cost_usd) if e.fitness else "—",
        )
    return table


def diff_lines(a: PromptRecord, b: PromptRecord) -> dict[str, list[str]]:
    """Unified diffs of the system texts and of the templates, line by line."""

    def diff(part: str, old: str, new: str) -> list[str]:
        return list(
            difflib.unified_diff(
                old.splitlines(),
                new.splitlines(),
                fromfile=f"{short(a.id)}/{part}",
                tofile=f"{short(b.id)}/{part}",
                lineterm="",
            )
        )

    return {
        "system": diff("system", a.system, b.system),
        "content": diff("content", a.content, b.content),
    }


def _diff_style(line: str) -> str:
    if line.startswith(("---", "+++")):
        return "bold"
    if line.startswith("@@"):
        return "cyan"
    return {"+": "green", "-": "red"}.get(line[:1], "")


async def diff_prompts(cfg: Settings, ref_a: str, ref_b: str, *, as_json: bool) -> None:
    async with store(cfg) as db:
        repo = PromptRepo(db)
        a, b = await resolve_prompt(repo, ref_a), await resolve_prompt(repo, ref_b)
    diffs = diff_lines(a, b)
    if as_json:
        print_json({"a": a.id, "b": b.id, **diffs})
        return
    if not diffs["system"] and not diffs["content"]:
        console.print(f"{short(a.id)} and {short(b.id)} have the same text")
        return
    for line in diffs["system"] + diffs["content"]:
        console.print(Text(line, style=_diff_style(line)), soft_wrap=True)


async def lineage(cfg: Settings, ref: str, *, as_json: bool) -> None:
    async with store(cfg) as db:
        repo = PromptRepo(db)
        prompt = await resolve_prompt(repo, ref)
        ancestors = await repo.lineage(prompt.id)
        fitness = await ExperimentRepo(db).latest_fitness([prompt.id, *(p.id for p in ancestors)])

    def node(p: PromptRecord) -> dict[str, Any]:
        keep = {"id", "role", "version", "tag", "generation", "parent_ids", "created_at"}
        return {**p.model_dump(mode="json", include=keep), "fitness": _fitness_of(fitness, p.id)}

    if as_json:
        print_json({"prompt": node(prompt), "ancestors": [node(p) for p in ancestors]})
        return
    known = {p.id: p for p in [prompt, *ancestors]}
    shown: set[str] = set()

    def label(p: PromptRecord) -> Text:
        return Text.assemble(
            (short(p.id), "bold cyan"),
            f" {p.role} v{p.version} gen {'—' if p.generation is None else p.generation} ",
            (f"[{p.tag or 'untagged'}]", "magenta"),
            f" {fitness_text(_fitness_of(fitness, p.id))}",
        )

    # A prompt bred from two parents that share an ancestor reaches it twice: print its
    # subtree the first time only, so the tree stays as long as the lineage.
    def grow(branch: Tree, p: PromptRecord) -> None:
        shown.add(p.id)
        for parent_id in p.parent_ids:
            parent = known.get(parent_id)
            if parent is None:
                branch.add(Text(f"{short(parent_id)} (not in the registry)", style="dim"))
            elif parent_id in shown:
                branch.add(Text.assemble(label(parent), (" (shown above)", "dim")))
            else:
                grow(branch.add(label(parent)), parent)

    tree = Tree(label(prompt))
    grow(tree, prompt)
    console.print(tree)
    if not prompt.parent_ids:
        console.print("no ancestors: a seed prompt")

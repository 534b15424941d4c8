"""Benchmark: does NSGA-II prompt evolution beat random search at equal evaluations?

For each campaign seed, two campaigns run from the default designer prompt with the same
population, generations, task set and seed: ``search = "nsga2"`` and ``search =
"random"`` (the baseline: the same operators and budget, parents and survivors drawn
uniformly, no selection pressure; ``optimizer.random_search``). Each campaign gets a
fresh lab (``perf/generation.py``'s: a new database, a Temporal dev server, all pools in
this process, the offline provider), so neither sees the other's prompts.

The task set is the optimizer's own slice of the suite (``default_tasks``: noise, where
the right result is no discovery, and planted edges, where it is a discovery; research
cycles never choose on these data). Per generation it reads the recorded generation:
research cycles measured (cumulative) and the archive's hypervolume (everything found so
far, normalised to [0, 1]). At equal budget, the smaller of the two campaigns' total
evaluations, each search's hypervolume is that of its last generation within the budget;
the ratio NSGA-II / random is printed per seed with the median and range.

    .venv/bin/python perf/evolution.py --seeds 1,2,3 --generations 4 --population 8

``--start KEY,KEY`` starts both searches from a weaker prod prompt instead: the default
designer prompt with those vocabulary instructions added (``stratlab.evolution.vocabulary``,
first phrasing each), registered and tagged prod before generation 0. The default prompt
has no instructions and scores near what the lab's gates allow on these tasks, so there is
little for any search to find from it; from a seed carrying instructions that hurt, a
search has to find and compound the removals, which is what selection pressure is for.

Writes perf/results/evolution.json and docs/evolution-hv.png (hypervolume against
evaluations, one line per campaign). DATABASE_URL (a server where it may create
databases) is faster than the embedded pgserver it starts otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimizer.genome import parse, render, with_instructions
from perf._evolution_compare import SEARCHES, TARGET_RATIO, compare
from perf.generation import Lab, fresh_lab, run_guarded
from stratlab.evolution.library import instruction_library
from stratlab.evolution.suite import default_tasks, load_suite
from stratlab.llm.prompts import DEFAULT_PROMPTS
from stratlab.models.optimization import GenerationRecord, OptimizationInput
from stratlab.store.generations import GenerationRepo
from stratlab.store.prompts import PromptRepo
from workflows import constants as c
from workflows.optimization import OptimizationGenerationWorkflow

ROLE = "designer"
ROOT = Path(__file__).resolve().parents[1]


async def campaign(args: argparse.Namespace, seed: int, search: str) -> dict[str, Any]:
    """One campaign in a fresh lab: per generation, cumulative evaluations and hypervolume."""
    tasks = [t.task_id for t in default_tasks(load_suite().tasks)]
    t0 = time.perf_counter()
    async with fresh_lab(args) as lab:
        if args.start:
            await start_from(lab, args.start)
        handle = await lab.client.start_workflow(
            OptimizationGenerationWorkflow.run,
            OptimizationInput(
                role=ROLE,
                search=search,  # type: ignore[arg-type]  # one of SEARCHES
                generations=args.generations,
                population=args.population,
                meta_mutations=min(4, args.population // 2),
                seed=seed,
                task_ids=tasks,
                max_parallel=args.max_parallel,
                generation=0,
            ),
            id=c.OPTIMIZE_WORKFLOW_ID.format(role=ROLE, generation=0),
            task_queue=lab.settings.task_queue(c.ORCHESTRATOR),
        )
        await asyncio.wait_for(handle.result(), timeout=args.timeout * 60)
        records = sorted(
            await GenerationRepo(lab.db).list(role=ROLE, limit=1000), key=lambda g: g.generation
        )
    return {
        "seed": seed,
        "search": search,
        "tasks": tasks,
        "wall_s": time.perf_counter() - t0,
        "generations": [_generation_row(g, records) for g in records],
    }


def start_prompt(keys: list[str]) -> tuple[str, str]:
    """The default designer prompt with the first phrasing of each instruction ``keys``
    names added to its instruction list: ``(system, content)``."""
    library = instruction_library(ROLE)
    unknown = [k for k in keys if k not in library]
    if unknown:
        raise SystemExit(f"--start: unknown instruction {unknown}; known: {sorted(library)}")
    default = DEFAULT_PROMPTS[ROLE]
    genome = parse(default.system, default.content)
    return render(with_instructions(genome, [library[k][0] for k in keys]))


async def start_from(lab: Lab, keys: list[str]) -> None:
    """Register the weaker start prompt and make it the designer's prod prompt."""
    system, content = start_prompt(keys)
    prompts = PromptRepo(lab.db)
    record = await prompts.insert(
        prompt_id=f"{ROLE}-start-{'-'.join(keys)}"[:60], role=ROLE, system=system,
        content=content, metadata={"start": keys},
    )  # fmt: skip
    await prompts.tag(record.id, "prod", actor="perf/evolution.py", reason=f"start: {keys}")


def _generation_row(g: GenerationRecord, records: list[GenerationRecord]) -> dict[str, Any]:
    spent = sum(r.evaluations for r in records if r.generation <= g.generation)
    assert g.started_at and g.finished_at
    return {
        "generation": g.generation,
        "prod_point": list(g.prod_fitness.objectives()) if g.prod_fitness else None,
        "archive_points": [list(m.fitness.objectives()) for m in g.archive if m.fitness],
        "search": g.search,
        "evaluations": g.evaluations,
        "evaluations_saved": g.evaluations_saved,
        "cumulative_evaluations": spent,
        "archive_hypervolume": g.archive_hypervolume,
        "hypervolume": g.hypervolume,
        "best_score": g.best_score,
        "candidates": len(g.candidates),
        "offspring": len(g.offspring),
        "wall_s": (g.finished_at - g.started_at).total_seconds(),
    }


def plot(runs: list[dict[str, Any]], summary: dict[str, Any], path: Path, start: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120, layout="constrained")
    colours = {"nsga2": "C0", "random": "C3"}
    names = {"nsga2": "NSGA-II", "random": "random search (baseline)"}
    shown: set[str] = set()
    for run in runs:
        xs = [g["cumulative_evaluations"] for g in run["generations"]]
        ys = [g["archive_hypervolume"] for g in run["generations"]]
        label = names[run["search"]] if run["search"] not in shown else None
        shown.add(run["search"])
        ax.step(xs, ys, where="post", color=colours[run["search"]], alpha=0.8, label=label)
        ax.plot(xs, ys, "o", color=colours[run["search"]], markersize=3)
        ax.annotate(f"seed {run['seed']}", (xs[-1], ys[-1]), fontsize=7, color="0.4",
                    xytext=(3, 0), textcoords="offset points")  # fmt: skip
    room = summary.get("headroom") or {}
    for key, label in (("ceiling", "best front any campaign found"), ("start", "start prompt")):
        if room.get(key) is not None:
            ax.axhline(room[key], color="0.5", linestyle="--", linewidth=0.8)
            ax.annotate(f"{label}: {room[key]:.3f}", (0.01, room[key]), fontsize=7,
                        color="0.35", xycoords=("axes fraction", "data"),
                        xytext=(0, 3), textcoords="offset points")  # fmt: skip
    median = summary["ratio_median"]
    ratio = f"{median:.2f}x" if median is not None else "n/a"
    ax.set_title(
        f"Prompt evolution against random search, offline provider, optimizer's own tasks\n"
        f"{'start: the default prompt + ' + ', '.join(start) + chr(10) if start else ''}"
        f"median hypervolume ratio at equal evaluations: {ratio} (target {TARGET_RATIO}x)",
        fontsize=10,
    )
    ax.set_xlabel("research cycles measured (cumulative)")
    ax.set_ylabel("archive hypervolume (score, tokens, latency; normalised)")
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def print_summary(runs: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    print("\nhypervolume of the archive against research cycles measured")
    for run in runs:
        steps = ", ".join(
            f"{g['cumulative_evaluations']}: {g['archive_hypervolume']:.4f}"
            for g in run["generations"]
        )
        print(f"  seed {run['seed']} {run['search']:>6} ({run['wall_s'] / 60:.1f} min): {steps}")
    print("\nat equal evaluations (the smaller campaign's total)")
    for p in summary["per_seed"]:
        hv = p["hypervolume"]
        ratio = f"{p['ratio']:.3f}" if p["ratio"] is not None else "n/a (random 0)"
        gain, saved = p["gain"], p["evaluations_saved"]
        print(
            f"  seed {p['seed']}: budget {p['budget']} cycles, NSGA-II {hv['nsga2']:.4f}, "
            f"random {hv['random']:.4f}, ratio {ratio}; gained over generation 0: NSGA-II "
            f"{gain['nsga2']:+.4f}, random {gain['random']:+.4f}; cycles saved by racing: "
            f"NSGA-II {saved['nsga2']}, random {saved['random']}"
        )
    if summary["ratio_median"] is not None:
        low, high = summary["ratio_range"]
        verdict = "meets" if summary["ratio_median"] >= TARGET_RATIO else "misses"
        print(
            f"median ratio {summary['ratio_median']:.3f} (range {low:.3f}-{high:.3f}): "
            f"{verdict} the {TARGET_RATIO}x target"
        )
    room, sign = summary["headroom"], summary["sign_test"]
    if room["max_ratio"] is not None:
        print(
            f"room: the start prompt alone {room['start']:.4f}, the best front any campaign "
            f"found {room['ceiling']:.4f}; a search reaching it against one finding nothing "
            f"would show {room['max_ratio']:.3f}x; a perfect score at the start's cost "
            f"{room['perfect_ratio']:.3f}x"
        )
        share = summary["headroom_share_median"]
        print(
            "share of that room covered at equal evaluations, median over seeds: "
            + ", ".join(f"{s} {v:.2f}" for s, v in share.items() if v is not None)
        )
    print(
        f"NSGA-II above random on {sign['wins']} seeds, below on {sign['losses']}: one-sided "
        f"sign test p = {sign['p_value']:.3f}"
    )
    walls = [g["wall_s"] for r in runs for g in r["generations"]]
    if walls:
        print(f"a generation took {statistics.median(walls):.0f} s (median of {len(walls)})")


def resummarise(path: Path, plot_path: Path) -> None:
    """Compare the campaigns stored in ``path`` again (no campaign runs), rewrite its
    summary and redraw the plot: for a comparison that changed after the figures were
    measured."""
    data = json.loads(path.read_text())
    data["summary"] = summary = compare(data["runs"])
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    start = data["config"].get("start")
    plot(data["runs"], summary, plot_path, start if isinstance(start, list) else [])
    print_summary(data["runs"], summary)
    print(f"figures: {path}, plot: {plot_path}")


async def main(args: argparse.Namespace) -> None:
    runs = []
    for seed in args.seeds:
        for search in SEARCHES:
            print(f"== seed {seed}, {search}", flush=True)
            runs.append(await campaign(args, seed, search))
            last = runs[-1]["generations"][-1] if runs[-1]["generations"] else None
            if last:
                print(
                    f"   {last['cumulative_evaluations']} cycles, archive hypervolume "
                    f"{last['archive_hypervolume']:.4f}",
                    flush=True,
                )
    summary = compare(runs)
    data = {
        "config": {
            "seeds": args.seeds,
            "generations": args.generations,
            "population": args.population,
            "max_parallel": args.max_parallel,
            "provider": "offline",
            "label": args.label,
            "start": args.start or "the default designer prompt",
            "date": time.strftime("%Y-%m-%d"),
        },
        "summary": summary,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2, default=str) + "\n")
    plot(runs, summary, args.plot, args.start)
    print_summary(runs, summary)
    print(f"figures: {args.out}, plot: {args.plot}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated campaign seeds")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--population", type=int, default=8, help="offspring per generation")
    parser.add_argument("--max-parallel", type=int, default=16, help="research cycles at once")
    parser.add_argument("--timeout", type=float, default=60, help="minutes per campaign")
    parser.add_argument(
        "--start", default="", help="comma-separated instruction keys added to the start prompt"
    )
    parser.add_argument("--label", default="", help="a note stored with the figures")
    parser.add_argument(
        "--summarise", action="store_true",
        help="compare the campaigns already in --out again and redraw --plot; runs none",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "perf/results/evolution.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs/evolution-hv.png")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.start = [k.strip() for k in args.start.split(",") if k.strip()]
    if len(args.seeds) < 1 or args.generations < 1 or args.population < 2:
        parser.error("--seeds needs one or more, --generations >= 1, --population >= 2")
    args.cold_jit = False  # fresh_lab's option: the shared numba cache
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.summarise:
        resummarise(arguments.out, arguments.plot)
    else:
        run_guarded(main, arguments)

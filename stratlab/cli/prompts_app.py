"""``stratlab prompts``: the prompt registry (read commands; the bodies are in prompts_view).

Commands that change a prompt's tag (approve, reject) belong on ``prompts_app`` too;
``resolve_prompt`` in prompts_view turns a typed id or prefix into a prompt for them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from stratlab.cli import prompts_view
from stratlab.cli._common import JsonOpt, run, settings

prompts_app = typer.Typer(
    help="The prompt registry: prompts, their fitness, differences and lineage.",
    no_args_is_help=True,
)
PromptArg = Annotated[str, typer.Argument(help="prompt id, or a unique prefix of 6+ characters")]


@prompts_app.command("list")
def list_prompts(
    role: Annotated[str | None, typer.Option(help="only prompts of this role")] = None,
    tag: Annotated[
        str | None, typer.Option(help="only prompts whose current tag is this, e.g. candidate")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Prompts, newest first, with the fitness of their latest completed experiment."""
    run(prompts_view.list_prompts(settings(), role=role, tag=tag, limit=limit, as_json=as_json))


@prompts_app.command("show")
def show_prompt(prompt_id: PromptArg, as_json: JsonOpt = False) -> None:
    """One prompt: metadata, tag history, fitness per experiment, system text and template."""
    run(prompts_view.show_prompt(settings(), prompt_id, as_json=as_json))


@prompts_app.command("diff")
def diff_prompts(a: PromptArg, b: PromptArg, as_json: JsonOpt = False) -> None:
    """Unified diff of two prompts' system texts and templates (A → B)."""
    run(prompts_view.diff_prompts(settings(), a, b, as_json=as_json))


@prompts_app.command("lineage")
def lineage(prompt_id: PromptArg, as_json: JsonOpt = False) -> None:
    """The prompt's ancestry tree, each ancestor with its tag and fitness."""
    run(prompts_view.lineage(settings(), prompt_id, as_json=as_json))


@prompts_app.command("approve")
def approve(
    prompt_id: PromptArg,
    reason: Annotated[str, typer.Option(help="why (kept in the tag event)")] = "approved",
    actor: Annotated[str, typer.Option(help="who decided")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Approve a candidate: it becomes prod and the previous prod is archived."""
    from stratlab.cli.evolution import review

    run(review(settings(), prompt_id, approve=True, reason=reason, actor=actor, as_json=as_json))


@prompts_app.command("reject")
def reject(
    prompt_id: PromptArg,
    reason: Annotated[str, typer.Option(help="why (kept in the tag event)")],
    actor: Annotated[str, typer.Option(help="who decided")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Reject a candidate: it is archived with the reason."""
    from stratlab.cli.evolution import review

    run(review(settings(), prompt_id, approve=False, reason=reason, actor=actor, as_json=as_json))

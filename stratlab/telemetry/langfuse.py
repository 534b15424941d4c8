"""Langfuse: every LLM call a generation, every regression run an experiment run.

Off unless ``LANGFUSE_PUBLIC_KEY`` and ``LANGFUSE_SECRET_KEY`` are set
(``Settings.langfuse_enabled``); off, nothing here imports or builds the SDK. On:

- ``LangfuseObserver`` (a ``CallObserver``) makes each budgeted LLM call a generation named
  by its role: model, bounded input and output, usage, the lab's own cost (so Langfuse
  never re-prices a call), the lab's latency, the research session as Langfuse session
  and prompt id and version in metadata. An answer rejected afterwards gets an
  ``outcome`` score on its generation.
- ``stratlab.evolution.langfuse_runs`` publishes each finished regression run as an
  experiment run over the benchmark dataset, through the same sink.

The v5 SDK is OpenTelemetry: generations are spans exported by a span processor on a
tracer provider, and the SDK keeps one set of resources (exporter, threads) per public
key per process. ``langfuse_sink`` mirrors that: one ``LangfuseSink`` per key, shared by
the llm pool's observer and the orchestrator's publisher, flushed by ``shutdown_langfuse``.
Nothing here may break the lab: SDK calls are guarded and network work runs on threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from stratlab.config import Settings
from stratlab.llm.observe import CallTrace
from stratlab.models.llm import CallOutcome, LlmCallRecord, LlmRequest
from stratlab.models.prompts import PromptRecord

if TYPE_CHECKING:
    from langfuse import Langfuse
    from langfuse._client.span import LangfuseGeneration
    from langfuse.types import SpanLevel

log = structlog.get_logger(__name__)

LAB_SCOPE_PREFIXES = ("stratlab", "temporalio")
"""Instrumentation scopes of the lab's own spans and of Temporal's tracing interceptor."""
TIMEOUT_SECONDS = 5  # each request to Langfuse; the SDK's default, made explicit
MAX_TEXT = 20_000  # characters of a prompt or answer kept on a generation
_LEVELS: dict[CallOutcome, SpanLevel] = {
    "malformed": "WARNING",
    "invalid": "WARNING",
    "truncated": "WARNING",
    "refused": "WARNING",
    "budget_exhausted": "WARNING",
    "error": "ERROR",
}


def span_filter() -> Callable[[ReadableSpan], bool]:
    """Langfuse's ``should_export_span``: the lab's spans (scopes ``stratlab…``),
    Temporal's workflow and activity spans, and what Langfuse exports by default (its
    own, GenAI, known LLM SDKs). Made once, outside any workflow: workflow spans end
    inside Temporal's sandbox, where the filter must not import anything."""
    from langfuse.span_filter import is_default_export_span

    def should_export_span(span: ReadableSpan) -> bool:
        scope = span.instrumentation_scope.name if span.instrumentation_scope else ""
        return scope.startswith(LAB_SCOPE_PREFIXES) or is_default_export_span(span)

    return should_export_span


class LangfuseSink:
    """One process's connection to one Langfuse project: the SDK client, a thread for its
    blocking calls, and the work still in flight (what shutdown waits for)."""

    def __init__(self, client: Langfuse) -> None:
        self.client = client
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="langfuse")
        self._futures: set[Future[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def in_background(self, work: Callable[[], None], *, what: str) -> None:
        """Run blocking SDK work (API calls, ``run_experiment``) off the event loop."""

        def guarded() -> None:
            try:
                work()
            except Exception as err:  # a Langfuse outage costs the publication, nothing else
                log.warning("langfuse_failed", what=what, error=str(err)[:500])

        future = self._executor.submit(guarded)
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    def track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self, *, timeout: float = 15.0) -> None:
        """Finish what is in flight, then flush and stop the SDK, within ``timeout``."""
        deadline = time.monotonic() + timeout
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        futures = set(self._futures)
        if futures:
            left = max(0.1, deadline - time.monotonic())
            await asyncio.to_thread(wait_futures, futures, left)
        self._executor.shutdown(wait=False)
        try:
            left = max(0.1, deadline - time.monotonic())
            await asyncio.wait_for(asyncio.to_thread(self.client.shutdown), left)
        except Exception as err:  # TimeoutError included: the SDK threads finish on their own
            log.warning("langfuse_flush_failed", error=str(err)[:300] or type(err).__name__)


_SINKS: dict[str, LangfuseSink] = {}
_SINKS_LOCK = threading.Lock()


def langfuse_sink(
    settings: Settings, *, tracer_provider: TracerProvider | None = None
) -> LangfuseSink | None:
    """This process's sink for the configured project, built on first use; None when
    Langfuse is off or its client cannot be built (the lab then runs without it).

    ``tracer_provider`` defaults to the process's shared one
    (``stratlab.telemetry.tracing.tracer_provider``): Langfuse hangs its span processor
    on it, so the lab's and Temporal's spans reach Langfuse beside the generations."""
    if not settings.langfuse_enabled:
        return None
    key = str(settings.langfuse_public_key)
    with _SINKS_LOCK:
        if key not in _SINKS:
            try:
                _SINKS[key] = LangfuseSink(_client(settings, tracer_provider))
            except Exception as err:
                log.warning("langfuse_disabled", error=str(err)[:300])
                return None
        return _SINKS[key]


def _client(settings: Settings, provider: TracerProvider | None) -> Langfuse:
    from langfuse import Langfuse
    from opentelemetry.sdk.resources import Resource

    from stratlab.telemetry.tracing import tracer_provider

    # The process's shared provider (tracing.py makes one whenever Langfuse is on), so
    # Langfuse's processor sees the lab's spans; a private one only if there is none, so
    # Langfuse never registers a provider of its own as the process's global one.
    provider = provider or tracer_provider(settings)
    if provider is None:
        service = Resource.create({"service.name": settings.otel_service_name})
        provider = TracerProvider(resource=service)
    # Keys and URL come from Settings only, never from the SDK's own reading of the env.
    return Langfuse(
        public_key=settings.langfuse_public_key,
        secret_key=settings.langfuse_secret_key,
        base_url=settings.langfuse_base_url.rstrip("/"),
        timeout=TIMEOUT_SECONDS,
        tracing_enabled=True,
        sample_rate=1.0,
        should_export_span=span_filter(),
        tracer_provider=provider,
    )


async def shutdown_langfuse(settings: Settings, *, timeout: float = 15.0) -> None:
    """Flush and stop this process's Langfuse sink, if one was built (safe to call
    always, from async code: it never blocks the loop and never raises). The SDK keeps a
    stopped client for its key, so call it once, when the process stops."""
    key = str(settings.langfuse_public_key)
    with _SINKS_LOCK:
        sink = _SINKS.pop(key, None) if settings.langfuse_enabled else None
    if sink is not None:
        await sink.shutdown(timeout=timeout)


# --- generations ------------------------------------------------------------------------


class PromptSource(Protocol):
    async def get(self, prompt_id: str) -> PromptRecord | None: ...


class _PromptVersions:
    """Prompt id → semver, read once per prompt (prompt rows are immutable). A lookup
    starts when a call starts, so it is done long before the call ends."""

    def __init__(self, prompts: PromptSource | None) -> None:
        self._prompts = prompts
        self._known: dict[str, str | None] = {}
        self._pending: dict[str, asyncio.Task[str | None]] = {}

    def start(self, prompt_id: str | None) -> None:
        if not prompt_id or self._prompts is None:
            return
        if prompt_id in self._known or prompt_id in self._pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop, no lookup: the generation goes without a version
            return
        self._pending[prompt_id] = loop.create_task(self._fetch(prompt_id))

    def known(self, prompt_id: str | None) -> tuple[bool, str | None]:
        """(resolved, version): not resolved while the lookup is still running."""
        if not prompt_id or prompt_id not in self._pending:
            return True, self._known.get(prompt_id or "")
        return False, None

    async def wait(self, prompt_id: str, timeout: float = 5.0) -> str | None:
        task = self._pending.get(prompt_id)
        if task is not None:
            await asyncio.wait({task}, timeout=timeout)
        return self._known.get(prompt_id)

    async def _fetch(self, prompt_id: str) -> str | None:
        assert self._prompts is not None
        try:
            prompt = await self._prompts.get(prompt_id)
            self._known[prompt_id] = prompt.version if prompt else None
        except Exception as err:  # tried again on the prompt's next call
            log.warning("langfuse_prompt_version_failed", prompt_id=prompt_id, error=str(err))
        finally:
            self._pending.pop(prompt_id, None)
        return self._known.get(prompt_id)


class LangfuseObserver:
    """A ``CallObserver`` that makes every budgeted LLM call a Langfuse generation."""

    def __init__(self, sink: LangfuseSink, prompts: PromptSource | None = None) -> None:
        self._sink = sink
        self._versions = _PromptVersions(prompts)
        # action id -> (trace id, observation id): where a later relabel goes.
        self._ids: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._open: set[str] = set()  # generations not ended yet
        self._relabelled: dict[str, LlmCallRecord] = {}  # new outcomes of open ones

    @contextmanager
    def observe(self, trace: CallTrace) -> Iterator[None]:
        generation = self._start(trace)
        # The span's own start, so that end - start is exactly the recorded latency.
        started = getattr(getattr(generation, "_otel_span", None), "start_time", None)
        started = started or time.time_ns()
        try:
            yield
        finally:
            if generation is not None:
                self._end(generation, trace, started, time.time_ns())

    def relabel(self, record: LlmCallRecord) -> None:
        """An ended span cannot change, so a rejected answer is scored on its generation
        (``outcome``: malformed, invalid, …); one still open takes the new outcome too."""
        ids = self._ids.get(record.action_id)
        if ids is None:
            return
        if record.action_id in self._open:
            self._relabelled[record.action_id] = record
        try:
            self._sink.client.create_score(
                name="outcome",
                value=record.outcome,
                data_type="CATEGORICAL",
                trace_id=ids[0],
                observation_id=ids[1],
                score_id=f"{ids[1]}-outcome",
                comment=(record.error or "")[:500] or None,
            )
        except Exception as err:
            log.warning("langfuse_relabel_failed", action_id=record.action_id, error=str(err))

    def _start(self, trace: CallTrace) -> LangfuseGeneration | None:
        try:
            from langfuse import propagate_attributes

            self._versions.start(trace.prompt_id)
            session = trace.session_id or trace.experiment_id
            with propagate_attributes(session_id=session) if session else nullcontext():
                generation = self._sink.client.start_observation(
                    name=trace.request.role,
                    as_type="generation",
                    model=trace.model,
                    input=_messages(trace.request),
                    model_parameters={
                        "temperature": trace.request.temperature,
                        "max_tokens": trace.request.max_output_tokens,
                    },
                )
            self._ids[trace.action_id] = (generation.trace_id, generation.id)
            self._open.add(trace.action_id)
            while len(self._ids) > 10_000:
                self._ids.popitem(last=False)
            return generation
        except Exception as err:
            log.warning("langfuse_generation_failed", action_id=trace.action_id, error=str(err))
            return None

    def _end(
        self, generation: LangfuseGeneration, trace: CallTrace, started: int, ended: int
    ) -> None:
        try:
            resolved, version = self._versions.known(trace.prompt_id)
            if resolved:
                self._close(generation, trace, version, started, ended)
                return
            # The prompt's version is still being read: end the span when it is known.
            later = self._close_later(generation, trace, started, ended)
            self._sink.track(asyncio.get_running_loop().create_task(later))
        except Exception as err:
            log.warning("langfuse_generation_failed", action_id=trace.action_id, error=str(err))

    async def _close_later(
        self, generation: LangfuseGeneration, trace: CallTrace, started: int, ended: int
    ) -> None:
        version = await self._versions.wait(str(trace.prompt_id))
        try:
            self._close(generation, trace, version, started, ended)
        except Exception as err:
            log.warning("langfuse_generation_failed", action_id=trace.action_id, error=str(err))

    def _close(
        self,
        generation: LangfuseGeneration,
        trace: CallTrace,
        version: str | None,
        started: int,
        ended: int,
    ) -> None:
        self._open.discard(trace.action_id)
        record = self._relabelled.pop(trace.action_id, trace.record)
        if record is None:  # the call was cancelled before it was recorded
            generation.update(level="WARNING", status_message="ended without a record")
            generation.end(end_time=ended)
            return
        response = trace.response
        generation.update(
            model=record.model,
            output=_bounded(response.text) if response else None,
            usage_details={
                "input": record.input_tokens,
                "output": record.output_tokens,
                "total": record.input_tokens + record.output_tokens,
            },
            # The lab's own price: with a cost given, Langfuse does not infer one.
            cost_details={"total": record.cost_usd},
            metadata=_metadata(trace, record, version),
            version=version,
            level=_LEVELS.get(record.outcome),
            status_message=record.error,
        )
        # Langfuse's latency is the lab's recorded one (simulated for offline: see metadata).
        end = started + int(record.latency_ms * 1e6) if response is not None else ended
        generation.end(end_time=end)


def _messages(request: LlmRequest) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": _bounded(request.system)},
        {"role": "user", "content": _bounded(request.prompt)},
    ]


def _bounded(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def _metadata(trace: CallTrace, record: LlmCallRecord, version: str | None) -> dict[str, Any]:
    values = {
        "prompt_id": trace.prompt_id,
        "prompt_version": version,
        "action_id": trace.action_id,
        "scope": trace.scope,
        "outcome": record.outcome,
        "cached": record.cached,
        "provider": record.provider,
        "session_id": trace.session_id,
        "experiment_id": trace.experiment_id,
        "iteration": trace.iteration,
        "latency_ms": record.latency_ms,
        "latency_simulated": record.latency_simulated,
        "schema": trace.request.schema_name,
    }
    return {k: v for k, v in values.items() if v is not None}


def langfuse_observer(
    settings: Settings, prompts: PromptSource | None = None
) -> LangfuseObserver | None:
    """The observer for an llm worker, None when Langfuse is off. ``prompts`` (the
    prompt registry) lets generations carry their prompt's version."""
    sink = langfuse_sink(settings)
    return LangfuseObserver(sink, prompts) if sink else None

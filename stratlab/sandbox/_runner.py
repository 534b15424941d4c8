"""The script the sandboxed interpreter runs: evaluate ``signals`` for a list of parameter sets.

It is started by ``stratlab.sandbox.executor`` as
``python -I -S -B _runner.py RUN_ID IN_DIR RESULT_PATH CONTROL_FD [SITE_DIR ...]`` and may
import only
the standard library, numpy and pandas: stratlab, pydantic and the rest of the worker's
environment are not in the sandbox. ``IN_DIR`` holds ``request.json`` (parameter sets and
index metadata), ``data.npz`` (the OHLCV columns and the index, no pickles) and
``strategy.py``; the answer is one JSON document written to ``RESULT_PATH``. When the
request holds a ``probe``, one parameter set then runs again on prefixes of the data and
the document says where its signals first changed (the look-ahead probe).

Everything after the user code starts is untrusted: the code runs in this very process and
can rewrite this module, so the host validates whatever ends up in the result file and
never relies on the checks made here. They exist to give the designer precise feedback
("exits contains NaN (first at bar 0); fill it, e.g. .fillna(False)").

``CONTROL_FD`` is the write end of a pipe to the host, the one channel the strategy code
cannot reach: a failure of the sandbox itself (inputs unreadable, numpy or pandas not
importable) is reported there, and the fd is closed before the strategy code is even
compiled. The host therefore treats an ``internal`` status in the result file as forged.
"""

from __future__ import annotations

import sys
from typing import Any

_MAX_MESSAGE = 400
_CODE_FILENAME = "<strategy>"


def main(argv: list[str]) -> int:
    import os

    _run_id, in_dir, result_path, control, *site_dirs = argv[1:]
    control_fd = int(control)
    sys.path[:0] = site_dirs
    try:
        import json

        import numpy as np

        request = json.loads(_read(f"{in_dir}/request.json"))
        with np.load(f"{in_dir}/data.npz", allow_pickle=False) as arrays:
            frame = _frame(request, {name: arrays[name] for name in arrays.files})
        source = _read(f"{in_dir}/strategy.py")
    except BaseException as exc:  # the sandbox itself is broken, not the strategy
        os.write(control_fd, _describe(exc).encode("utf-8", "replace"))
        return 0
    os.close(control_fd)  # from here on, untrusted code runs in this process
    _write(result_path, _evaluate(source, frame, request["param_sets"], request.get("probe")))
    return 0


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _write(path: str, document: dict[str, Any]) -> None:
    import json

    # "w" truncates the file in place: it is a bind mount and cannot be replaced.
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle)


def _frame(request: dict[str, Any], arrays: dict[str, Any]) -> Any:
    import contextlib

    import pandas as pd

    values = arrays["index"]
    if values.dtype.kind == "M":
        index = pd.DatetimeIndex(values, name=request["index_name"])
        if request["index_tz"]:  # sent as UTC: exact, whatever the daylight-saving rules
            index = index.tz_localize("UTC").tz_convert(request["index_tz"])
        if request["index_freq"]:
            # the frequency is a nicety; a frame without it is still the same data
            with contextlib.suppress(ValueError):
                index = pd.DatetimeIndex(index, freq=request["index_freq"])
    else:
        index = pd.Index(values, name=request["index_name"])
    columns = request["columns"]
    return pd.DataFrame({name: arrays[f"col{i}"] for i, name in enumerate(columns)}, index=index)


def _evaluate(
    source: str, frame: Any, param_sets: list[dict[str, float]], probe: dict[str, Any] | None
) -> dict[str, Any]:
    import numpy as np

    try:
        code = compile(source, _CODE_FILENAME, "exec")
    except SyntaxError as exc:
        return _failure("syntax", f"SyntaxError: {exc.msg}", exc.lineno, source)
    except (ValueError, RecursionError, MemoryError) as exc:
        return _failure("syntax", _describe(exc), None, source)
    n_bars, n_sets = len(frame), len(param_sets)
    entries = np.zeros((n_bars, n_sets), dtype=bool)
    exits = np.zeros((n_bars, n_sets), dtype=bool)
    namespace: dict[str, Any] = {"__name__": "strategy"}
    params: dict[str, float] | None = None
    try:
        exec(code, namespace)
        signals = namespace.get("signals")
        if not callable(signals):
            return _failure("runtime", "the code defines no function signals(data, params)")
        for column, params in enumerate(param_sets):
            # A fresh copy per call: code that adds columns to `data` must not leak them
            # into the next parameter set.
            returned = signals(frame.copy(), dict(params))
            problem = _store(returned, n_bars, entries, exits, column)
            if problem:
                return _failure("bad_result", problem, params=params)
    except MemoryError:
        return _failure("memory", "MemoryError: the strategy ran out of memory", params=params)
    except BaseException as exc:
        return _failure("runtime", _describe(exc), _user_line(exc), source, params)
    document: dict[str, Any] = {
        "status": "ok",
        "n_bars": n_bars,
        "n_sets": n_sets,
        "entries": _pack(entries),
        "exits": _pack(exits),
    }
    if probe:
        column = probe["param_index"]
        document["probe"] = _probe(
            signals, frame, param_sets[column], entries[:, column], exits[:, column], probe
        )
    return document


# --- the look-ahead probe -----------------------------------------------------------------
# The same policy as ``stratlab.strategies.lookahead`` (see its docstring), which this
# script cannot import: the caller's cuts are strict, the cuts added at bars where the full
# run signals are lenient below the first caller cut.


def _probe(
    signals: Any, frame: Any, params: dict[str, float], entries: Any, exits: Any, plan: Any
) -> dict[str, Any]:
    """Compare signals on prefixes ``frame[: cut + 1]`` with the full run's column."""
    cuts = [int(c) for c in plan["cuts"]]
    strict_from = min(cuts)
    added = _signal_cuts(entries, plan["signal_cuts"]) | _signal_cuts(exits, plan["signal_cuts"])
    compared = 0
    found: tuple[int, str, int] | None = None
    failure: tuple[int, str] | None = None
    for cut in sorted(set(cuts) | added):
        outcome = _prefix_signals(signals, frame, params, cut)
        if isinstance(outcome, str):
            if cut >= strict_from and failure is None:
                failure = (cut, outcome)
            continue
        compared += 1
        change = _first_change(entries, exits, outcome, cut)
        if change is not None and (found is None or change[0] < found[0]):
            found = (*change, cut)
    probe: dict[str, Any] = {
        "cuts": compared, "first_bar": None, "series": "", "cut": None, "error": None
    }  # fmt: skip
    if found is not None:
        probe.update(first_bar=found[0], series=found[1], cut=found[2])
    elif failure is not None:
        probe.update(cut=failure[0], error=failure[1])
    return probe


def _signal_cuts(full: Any, count: int) -> set[int]:
    """The first bar where ``full`` is True and up to ``count`` spread over the rest."""
    import numpy as np

    bars = np.flatnonzero(full[:-1])
    if count < 1 or len(bars) == 0:
        return set()
    return {int(bars[i]) for i in np.linspace(0, len(bars) - 1, count).round().astype(int)}


def _prefix_signals(signals: Any, frame: Any, params: dict[str, float], cut: int) -> Any:
    """(entries, exits) of the prefix ending at ``cut``, or why there are none."""
    try:
        returned = signals(frame.iloc[: cut + 1].copy(), dict(params))
        if not isinstance(returned, tuple | list) or len(returned) != 2:
            return f"signals returned {type(returned).__name__}, not (entries, exits)"
        pair = []
        for name, value in zip(("entries", "exits"), returned, strict=True):
            values, problem = _as_bool(name, _missing_as_false(value), cut + 1)
            if problem:
                return problem
            pair.append(values)
        return pair
    except MemoryError:
        return "MemoryError: the strategy ran out of memory"
    except BaseException as exc:
        line = _user_line(exc)
        return _describe(exc) + (f", line {line}" if line else "")


def _missing_as_false(value: Any) -> Any:
    """NaN/None read as False in a prefix, like ``lookahead.compare_prefix``: a value that
    is missing there but not in the full run still differs from a True."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame) and value.shape[1] == 1:
        value = value.iloc[:, 0]
    array = np.asarray(value)
    if array.ndim != 1 or array.dtype.kind not in "fO":
        return value
    return np.where(pd.isna(array), False, array)


def _first_change(entries: Any, exits: Any, prefix: Any, cut: int) -> tuple[int, str] | None:
    import numpy as np

    first: tuple[int, str] | None = None
    for name, full, part in (("entries", entries, prefix[0]), ("exits", exits, prefix[1])):
        changed = np.flatnonzero(full[: cut + 1] != part)
        if len(changed) and (first is None or int(changed[0]) < first[0]):
            first = (int(changed[0]), name)
    return first


def _store(returned: Any, n_bars: int, entries: Any, exits: Any, column: int) -> str | None:
    if not isinstance(returned, tuple | list) or len(returned) != 2:
        return (
            "signals must return a tuple (entries, exits) of two boolean series, got "
            f"{type(returned).__name__}"
        )
    for name, value, target in (("entries", returned[0], entries), ("exits", returned[1], exits)):
        values, problem = _as_bool(name, value, n_bars)
        if problem:
            return problem
        target[:, column] = values
    return None


def _as_bool(name: str, value: Any, n_bars: int) -> tuple[Any, str | None]:
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame) and value.shape[1] == 1:
        value = value.iloc[:, 0]
    array = np.asarray(value)
    if array.ndim != 1:
        return None, f"{name} must be one value per bar (1-D), got shape {array.shape}"
    if len(array) != n_bars:
        return None, (
            f"{name} has {len(array)} values but data has {n_bars} bars; return one value "
            "per bar, aligned with data"
        )
    if array.dtype == bool:
        return array, None
    if array.dtype.kind not in "iufO":
        return None, f"{name} must be booleans (True/False), got dtype {array.dtype}"
    missing = pd.isna(array)
    if missing.any():
        first = int(np.argmax(missing))
        return None, (
            f"{name} contains NaN/None (first at bar {first}); fill it, e.g. .fillna(False)"
        )
    if array.dtype.kind == "O":
        valid = all(isinstance(v, bool | np.bool_) for v in array)
    else:
        valid = bool(np.isin(array, (0, 1)).all())
    if not valid:
        return None, f"{name} must be booleans (True/False), got dtype {array.dtype}"
    return array.astype(bool), None


def _pack(signals: Any) -> str:
    import base64

    import numpy as np

    return base64.b64encode(np.packbits(signals.ravel()).tobytes()).decode("ascii")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return "SystemExit: the code called exit(); return (entries, exits) instead"
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _user_line(exc: BaseException) -> int | None:
    """The line of the innermost frame of the strategy code in the traceback."""
    import traceback

    lines = [
        frame.lineno
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename == _CODE_FILENAME
    ]
    return lines[-1] if lines else None


def _failure(
    kind: str,
    message: str,
    line: int | None = None,
    source: str | None = None,
    params: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The error document: message, the user-code line it points at, and the params."""
    if line and source:
        source_lines = source.splitlines()
        if 0 < line <= len(source_lines):
            message += f", line {line}: `{source_lines[line - 1].strip()[:200]}`"
        else:
            message += f", line {line}"
    if params:
        message += f" (with params {params})"
    return {"status": "error", "error_kind": kind, "error": message}


if __name__ == "__main__":
    sys.exit(main(sys.argv))

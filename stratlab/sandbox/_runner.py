"""The script the sandboxed interpreter runs: evaluate ``signals`` for a list of parameter sets.

It is started by ``stratlab.sandbox.executor`` as
``python -I -S -B _runner.py RUN_ID IN_DIR RESULT_PATH [SITE_DIR ...]`` and may import only
the standard library, numpy and pandas: stratlab, pydantic and the rest of the worker's
environment are not in the sandbox. ``IN_DIR`` holds ``request.json`` (parameter sets and
index metadata), ``data.npz`` (the OHLCV columns and the index, no pickles) and
``strategy.py``; the answer is one JSON document written to ``RESULT_PATH``.

Everything after the user code starts is untrusted: the code runs in this very process and
can rewrite this module, so the host validates whatever ends up in the result file and
never relies on the checks made here. They exist to give the designer precise feedback
("exits contains NaN (first at bar 0); fill it, e.g. .fillna(False)").
"""

from __future__ import annotations

import sys
from typing import Any

_MAX_MESSAGE = 400
_CODE_FILENAME = "<strategy>"


def main(argv: list[str]) -> int:
    _run_id, in_dir, result_path, *site_dirs = argv[1:]
    sys.path[:0] = site_dirs
    try:
        import json

        import numpy as np

        request = json.loads(_read(f"{in_dir}/request.json"))
        with np.load(f"{in_dir}/data.npz", allow_pickle=False) as arrays:
            frame = _frame(request, {name: arrays[name] for name in arrays.files})
        source = _read(f"{in_dir}/strategy.py")
    except BaseException as exc:  # the sandbox itself is broken, not the strategy
        _write(result_path, {"status": "internal", "error": _describe(exc)})
        return 0
    _write(result_path, _evaluate(source, frame, request["param_sets"]))
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


def _evaluate(source: str, frame: Any, param_sets: list[dict[str, float]]) -> dict[str, Any]:
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
    return {
        "status": "ok",
        "n_bars": n_bars,
        "n_sets": n_sets,
        "entries": _pack(entries),
        "exits": _pack(exits),
    }


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

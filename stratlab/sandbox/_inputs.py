"""The inputs of one sandboxed run, as files the runner reads without pickles.

``in/request.json`` holds the parameter sets, the probe request and the index metadata;
``in/data.npz`` the numeric columns and the index; ``in/strategy.py`` the code; and an
empty ``result.json`` is made for the answer (see ``stratlab.sandbox._runner``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def write_inputs(
    run_dir: Path,
    source: str,
    frame: pd.DataFrame,
    param_sets: list[dict[str, float]],
    probe: dict[str, object] | None = None,
) -> None:
    """Fill the fresh private ``run_dir``: ``in/`` (request, data, code) and an empty
    result file. The caller removes the dir, whatever happens."""
    request, arrays = encode_frame(frame)
    request["param_sets"] = [encode_params(p) for p in param_sets]
    request["probe"] = probe
    (run_dir / "in").mkdir()
    (run_dir / "in" / "strategy.py").write_text(source, encoding="utf-8")
    (run_dir / "in" / "request.json").write_text(json.dumps(request), encoding="utf-8")
    np.savez(run_dir / "in" / "data.npz", **arrays)  # type: ignore[arg-type]
    (run_dir / "result.json").touch(mode=0o600)


def encode_frame(frame: pd.DataFrame) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        raise ValueError("frame has duplicate column names")
    for i, name in enumerate(frame.columns):
        values = np.asarray(frame[name])
        if values.dtype.kind not in "biuf":
            raise ValueError(f"column {name!r} has dtype {values.dtype}; only numbers are sent")
        arrays[f"col{i}"] = values
    index = frame.index
    request: dict[str, object] = {
        "columns": columns,
        "index_name": None if index.name is None else str(index.name),
        "index_tz": None,
        "index_freq": None,
    }
    if isinstance(index, pd.DatetimeIndex):
        request["index_freq"] = index.freqstr
        if index.tz is not None:
            request["index_tz"] = str(index.tz)
            index = index.tz_convert("UTC").tz_localize(None)
        arrays["index"] = index.to_numpy()
    else:
        arrays["index"] = np.asarray(index)
        if arrays["index"].dtype.kind not in "iuf":
            raise ValueError(f"frame index has dtype {index.dtype}; use a DatetimeIndex")
    return request, arrays


def encode_params(params: dict[str, float]) -> dict[str, float]:
    for name, value in params.items():
        if not isinstance(value, int | float) or not np.isfinite(value):
            raise ValueError(f"parameter {name!r} must be a finite number, got {value!r}")
    return {str(k): v for k, v in params.items()}

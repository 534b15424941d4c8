"""The ``ml`` strategy kind: a classifier of "is the close ``label_horizon`` bars ahead
higher?", trained epoch by epoch so that a killed compute worker loses at most one epoch.

The training activity drives :class:`MlTrainer` one :meth:`MlTrainer.train_epoch` at a
time, stores :meth:`MlTrainer.checkpoint` after each, and on a retry continues from
:meth:`MlTrainer.restore`. Resuming is exact: 4 epochs, checkpoint, restore, 6 more gives
the same losses and predictions as 10 epochs straight, because everything that changes
between epochs (classifier weights and optimizer state, the shuffling RNG, the history)
is in the checkpoint and everything else is recomputed deterministically from the data.

:meth:`MlTrainer.report` measures skill on the validation split against the base rate:
the log loss of always forecasting the train split's up-rate, and the AUC with a
one-sided p-value (``stratlab.strategies.ml_skill``). Only the train split is fitted on
(scaler, classifier, base rate); the validation split is only scored; the test split is
never read, since features are computed on ``splits.through("validation")`` at most.
Checkpoints and model blobs are pickles of our own objects: they live only in our own
database, never come from users.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler

from stratlab.models.research import DataSplit, EpochStats, StrategySpec, TrainingReport
from stratlab.strategies._ml_features import _ml_part, feature_matrix, finite_rows, labels
from stratlab.strategies._ml_model import (
    CLASSES,
    Classifier,
    fit_epoch,
    make_classifier,
    up_probability,
)
from stratlab.strategies.ml_skill import auc_significance, base_rate_log_loss

if TYPE_CHECKING:
    from stratlab.backtest.walkforward import Fold
    from stratlab.market.splits import Splits

__all__ = [
    "CHECKPOINT_FORMAT",
    "MODEL_FORMAT",
    "MlTrainer",
    "feature_matrix",
    "labels",
    "ml_signals",
    "spec_fingerprint",
    "walk_forward_signals",
]

CHECKPOINT_FORMAT = 1
"""Version of :meth:`MlTrainer.checkpoint` blobs; bump when their content changes."""
MODEL_FORMAT = 1
"""Version of :meth:`MlTrainer.model_blob` blobs; bump when their content changes."""


@dataclass(frozen=True)
class _Rows:
    """Scaled features and labels of the rows of one split that can be used."""

    x: np.ndarray
    y: np.ndarray


class MlTrainer:
    """Fits ``spec.ml`` on the train split, one partial-fit pass per epoch."""

    def __init__(self, spec: StrategySpec, splits: Splits, *, seed: int = 0) -> None:
        self._spec = spec
        self._ml = _ml_part(spec)
        self._seed = seed
        self._splits: list[DataSplit] = splits.describe()
        self._scaler, self._train, self._validation = _prepare(spec, splits)
        self._classifier: Classifier = make_classifier(self._ml.classifier, seed=seed)
        # The shuffle order is drawn from this generator, which goes into the checkpoint.
        self._rng = np.random.default_rng(seed)
        self._history: list[EpochStats] = []
        self._resumed_from = 0
        self._train_ms = 0.0

    @property
    def epoch(self) -> int:
        """Epochs completed so far (0 before the first)."""
        return len(self._history)

    @property
    def done(self) -> bool:
        return self.epoch >= self._ml.epochs

    @property
    def history(self) -> list[EpochStats]:
        return list(self._history)

    def train_epoch(self) -> EpochStats:
        """One shuffled partial-fit pass over the train rows, then score it."""
        if self.done:
            raise RuntimeError(f"training already finished after {self.epoch} epochs")
        started = time.perf_counter()
        fit_epoch(self._classifier, self._train.x, self._train.y, self._rng)
        train_p = up_probability(self._classifier, self._train.x)
        validation_p = up_probability(self._classifier, self._validation.x)
        stats = EpochStats(
            epoch=self.epoch + 1,
            loss=float(log_loss(self._train.y, train_p, labels=CLASSES)),
            validation_accuracy=float(np.mean((validation_p >= 0.5) == self._validation.y)),
        )
        self._history.append(stats)
        self._train_ms += (time.perf_counter() - started) * 1000.0
        return stats

    def validation_probabilities(self) -> np.ndarray:
        """P(up) of the usable validation rows under the current model."""
        return up_probability(self._classifier, self._validation.x)

    def checkpoint(self) -> bytes:
        """Everything needed to continue exactly where this object is."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "spec": spec_fingerprint(self._spec),
            "data": _data_digest(self._train, self._validation),
            "sklearn": sklearn.__version__,
            "seed": self._seed,
            "classifier": self._classifier,
            "rng": self._rng,
            "history": [s.model_dump() for s in self._history],
            "train_ms": self._train_ms,
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, spec: StrategySpec, splits: Splits, blob: bytes) -> MlTrainer:
        """A trainer continuing from ``blob``; ``ValueError`` if it was made for another
        spec, other data, another scikit-learn version or another checkpoint format."""
        state = _unpickle(blob, what="checkpoint", version=CHECKPOINT_FORMAT)
        if state.get("spec") != spec_fingerprint(spec):
            raise ValueError(
                f"checkpoint was made for a different strategy spec than {spec.name!r}; "
                "start training from epoch 0 instead"
            )
        if state.get("sklearn") != sklearn.__version__:
            # Optimizer internals may change between releases: resuming would not be exact.
            raise ValueError(
                f"checkpoint was made with scikit-learn {state.get('sklearn')}, this worker "
                f"has {sklearn.__version__}; start training from epoch 0 instead"
            )
        trainer = cls(spec, splits, seed=int(state["seed"]))
        if state.get("data") != _data_digest(trainer._train, trainer._validation):
            raise ValueError(
                "checkpoint was made on different train/validation data; "
                "start training from epoch 0 instead"
            )
        trainer._classifier = state["classifier"]
        trainer._rng = state["rng"]
        trainer._history = [EpochStats.model_validate(s) for s in state["history"]]
        trainer._train_ms = float(state["train_ms"])
        trainer._resumed_from = trainer.epoch
        return trainer

    def report(self) -> TrainingReport:
        """The training gate's input. ``duration_ms`` is the time spent in epochs, summed
        over every worker that trained this model. The validation skill fields score the
        current (last epoch's) model and stay None before the first epoch."""
        first = self._history[0] if self._history else None
        last = self._history[-1] if self._history else None
        decrease = None
        if first is not None and last is not None and first.loss > 0:
            decrease = (first.loss - last.loss) / first.loss
        return TrainingReport(
            kind="ml",
            splits=self._splits,
            epochs=list(self._history),
            accuracy=last.validation_accuracy if last else None,
            final_loss=last.loss if last else None,
            loss_decrease=decrease,
            resumed_from_epoch=self._resumed_from,
            duration_ms=self._train_ms,
            **(self._validation_skill() if last else {}),
        )

    def _validation_skill(self) -> dict[str, float | None]:
        y = self._validation.y
        p_up = self.validation_probabilities()
        auc = auc_significance(p_up, y, label_horizon=self._ml.label_horizon)
        return {
            "validation_log_loss": float(log_loss(y, p_up, labels=CLASSES)),
            "base_rate_log_loss": base_rate_log_loss(self._train.y, y),
            "validation_auc": None if auc is None else auc[0],
            "auc_p_value": None if auc is None else auc[1],
        }

    def model_blob(self) -> bytes:
        """The fitted model for :func:`ml_signals`: scaler, classifier, feature names."""
        if self.epoch == 0:
            raise RuntimeError("no epoch trained yet: there is no model to save")
        state = {
            "format": MODEL_FORMAT,
            "spec": spec_fingerprint(self._spec),
            "features": list(self._ml.features),
            "scaler": self._scaler,
            "classifier": self._classifier,
        }
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def ml_signals(
    spec: StrategySpec, model_blob: bytes, frame: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Entries (P(up) >= ``threshold``) and exits (P(up) < ``exit_threshold``) over every
    bar of ``frame``, as 1-D bool arrays; bars with a missing feature (warm-up) get
    neither."""
    ml = _ml_part(spec)
    state = _unpickle(model_blob, what="model", version=MODEL_FORMAT)
    if state.get("features") != list(ml.features):
        raise ValueError(
            f"model was trained on features {state.get('features')}, "
            f"but strategy {spec.name!r} uses {list(ml.features)}"
        )
    matrix = feature_matrix(spec, frame)
    usable = finite_rows(matrix)
    p_up = np.full(len(frame), np.nan)
    if usable.any():
        p_up[usable] = up_probability(
            state["classifier"], state["scaler"].transform(matrix[usable])
        )
    entries = usable & (p_up >= ml.threshold)
    exits = usable & (p_up < ml.exit_threshold)
    return entries, exits


def walk_forward_signals(
    spec: StrategySpec, history: pd.DataFrame, folds: Sequence[Fold], *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Entries and exits over ``history`` from one model per walk-forward fold.

    Fold ``k``'s model (scaler and classifier, ``spec.ml.epochs`` shuffled passes from
    ``seed``, as :class:`MlTrainer` fits) learns from ``history[:fit_end]`` alone: its
    features are computed on those bars and only labels whose future close lies before
    ``fit_end`` are kept, which purges the labels that span the boundary. It then signals
    its test block ``[test_start, test_end)`` only, from features computed on the bars up
    to ``test_end``. Bars outside every test block get no signal; a fold whose past has
    nothing to learn from (one label class) signals nothing.
    """
    ml = _ml_part(spec)
    entries = np.zeros(len(history), dtype=bool)
    exits = np.zeros(len(history), dtype=bool)
    for fold in folds:
        past = history.iloc[: fold.fit_end]
        x, y = _usable(feature_matrix(spec, past), labels(past, ml.label_horizon))
        if y.shape[0] < 2 or np.unique(y).shape[0] < 2:
            continue
        scaler = StandardScaler().fit(x)
        scaled = scaler.transform(x)
        classifier = make_classifier(ml.classifier, seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(ml.epochs):
            fit_epoch(classifier, scaled, y, rng)
        block = feature_matrix(spec, history.iloc[: fold.test_end])[fold.test_start :]
        usable = finite_rows(block)
        p_up = np.full(block.shape[0], np.nan)
        if usable.any():
            p_up[usable] = up_probability(classifier, scaler.transform(block[usable]))
        entries[fold.test_start : fold.test_end] = usable & (p_up >= ml.threshold)
        exits[fold.test_start : fold.test_end] = usable & (p_up < ml.exit_threshold)
    return entries, exits


def spec_fingerprint(spec: StrategySpec) -> str:
    """A digest of the parts of ``spec`` that training depends on. Keys are sorted so a
    spec that went through Postgres JSONB (which reorders keys) keeps its fingerprint;
    name and rationale are left out because they do not change the model."""
    relevant = spec.model_dump(mode="json", include={"kind", "symbol", "indicators", "ml"})
    text = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _prepare(spec: StrategySpec, splits: Splits) -> tuple[StandardScaler, _Rows, _Rows]:
    """Scaler fitted on train rows, plus the usable train and validation rows.

    Train features come from the train split alone and train labels need a close inside
    it, so nothing after the train split reaches the fit, whatever the indicators do.
    Validation rows use the history through the validation split (warm-up from the train
    bars is the past, not a leak) and drop labels that would need a test-split close.
    """
    ml = _ml_part(spec)
    train_frame = splits.train
    history = splits.through("validation")
    n_train = len(train_frame)
    if len(history) != n_train + len(splits.validation):
        raise ValueError("splits.through('validation') is not train followed by validation")
    x_train, y_train = _usable(
        feature_matrix(spec, train_frame), labels(train_frame, ml.label_horizon)
    )
    x_val, y_val = _usable(
        feature_matrix(spec, history)[n_train:], labels(history, ml.label_horizon)[n_train:]
    )
    if y_train.shape[0] < 2 or np.unique(y_train).shape[0] < 2:
        raise ValueError(
            f"the train split has {y_train.shape[0]} usable rows, too few to fit "
            f"{spec.name!r} (need both up and down labels after indicator warm-up)"
        )
    if y_val.shape[0] == 0:
        raise ValueError(f"the validation split has no usable rows for {spec.name!r}")
    scaler = StandardScaler().fit(x_train)
    return scaler, _Rows(scaler.transform(x_train), y_train), _Rows(scaler.transform(x_val), y_val)


def _usable(matrix: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = finite_rows(matrix) & np.isfinite(y)
    return matrix[keep], y[keep]


def _data_digest(train: _Rows, validation: _Rows) -> str:
    digest = hashlib.sha256()
    for array in (train.x, train.y, validation.x, validation.y):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _unpickle(blob: bytes, *, what: str, version: int) -> dict[str, Any]:
    try:
        state = pickle.loads(blob)
    except Exception as exc:  # a truncated or foreign blob: say so instead of crashing
        raise ValueError(f"not a readable ml {what} blob: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != version:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"ml {what} blob has format {found!r}, this code reads {version}")
    return state

"""The ``ml`` strategy kind: labels, scale-free features, exact resume, no look-ahead,
and a training gate that rejects noise and accepts a planted edge."""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu, norm
from sklearn.metrics import roc_auc_score

from stratlab.backtest.gates import training_gate
from stratlab.backtest.walkforward import Fold, anchored_folds
from stratlab.market.indicators import INDICATORS
from stratlab.market.splits import split_by_time
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.research import IndicatorRef, MlSpec, StrategySpec, TrainingGateThresholds
from stratlab.strategies._ml_features import INDICATOR_SCALES, finite_rows
from stratlab.strategies.ml import (
    MlTrainer,
    feature_matrix,
    labels,
    ml_signals,
    walk_forward_signals,
)
from stratlab.strategies.ml_skill import auc_significance, base_rate_log_loss

BARS = 3000
WARMUP = 20  # the longest indicator window of the spec below


def _spec(classifier: str = "logistic", *, epochs: int = 10, **ml: Any) -> StrategySpec:
    return StrategySpec(
        name=f"ml-{classifier}",
        kind="ml",
        indicators=[
            IndicatorRef(alias="r", kind="rsi", params={"window": 14}),
            IndicatorRef(alias="m", kind="roc", params={"window": 10}),
            IndicatorRef(alias="z", kind="zscore", params={"window": 20}),
            IndicatorRef(alias="bb", kind="bbands", params={"window": 20, "k": 2}),
        ],
        ml=MlSpec(
            features=["r", "m", "z", "bb.pctb"],
            classifier=classifier,  # type: ignore[arg-type]
            epochs=epochs,
            **ml,
        ),
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_ohlcv(bars=BARS, seed=7)


def _report(trainer: MlTrainer) -> dict[str, Any]:
    # duration_ms is wall-clock time, the one field that may differ between equal runs.
    return trainer.report().model_dump(exclude={"duration_ms", "resumed_from_epoch"})


def _train(trainer: MlTrainer, epochs: int | None = None) -> MlTrainer:
    for _ in range(epochs if epochs is not None else 10**6):
        if trainer.done:
            break
        trainer.train_epoch()
    return trainer


def _mean_reverting(bars: int, *, seed: int) -> pd.DataFrame:
    """A price that mean-reverts strongly, so a z-score predicts its next moves."""
    rng = np.random.default_rng(seed)
    level = np.zeros(bars)
    for t in range(1, bars):
        level[t] = 0.3 * level[t - 1] + rng.normal(0.0, 0.02)
    close = 100.0 * np.exp(level)
    return pd.DataFrame(
        {
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": np.full(bars, 1e6),
        },
        index=pd.bdate_range("2000-01-03", periods=bars),
    )


def _momentum(bars: int, *, seed: int, edge: float = 0.3, window: int = 10) -> pd.DataFrame:
    """A planted edge: each bar's drift is ``edge`` volatilities in the direction of the
    last ``window`` bars' return, which the spec's ``roc`` (window 10) feature sees."""
    rng = np.random.default_rng(seed)
    volatility = 0.012
    noise = volatility * rng.standard_normal(bars)
    returns = np.zeros(bars)
    for t in range(bars):
        returns[t] = edge * volatility * np.sign(returns[max(0, t - window) : t].sum()) + noise[t]
    close = 100.0 * np.exp(np.cumsum(returns))
    return pd.DataFrame(
        {
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": np.full(bars, 1e6),
        },
        index=pd.bdate_range("2000-01-03", periods=bars),
    )


# --- labels and features ---------------------------------------------------------------


def test_labels_compare_the_close_horizon_bars_ahead_and_drop_the_last_ones() -> None:
    frame = pd.DataFrame({"close": [10.0, 11.0, 9.0, 12.0, 12.0, 8.0]})
    got = labels(frame, 2)
    np.testing.assert_array_equal(got[:4], [0.0, 1.0, 1.0, 0.0])
    assert np.isnan(got[4:]).all()


def test_labels_are_unknown_where_a_close_is_missing() -> None:
    frame = pd.DataFrame({"close": [10.0, np.nan, 9.0, 12.0]})
    got = labels(frame, 1)
    assert np.isnan(got[0]) and np.isnan(got[1])
    assert got[2] == 1.0 and np.isnan(got[3])


def test_features_are_scale_free(frame: pd.DataFrame) -> None:
    spec = _spec()
    spec.indicators.append(IndicatorRef(alias="s", kind="sma", params={"window": 10}))
    spec.indicators.append(IndicatorRef(alias="a", kind="atr", params={"window": 14}))
    assert spec.ml is not None
    spec.ml.features = ["close", "high", "s", "a", "bb.upper", "bb.pctb", "z"]
    scaled = frame.copy()
    scaled[["open", "high", "low", "close"]] *= 1000.0
    base, big = feature_matrix(spec, frame), feature_matrix(spec, scaled)
    assert base.shape == (len(frame), 7)
    np.testing.assert_allclose(base, big, rtol=1e-9, atol=1e-12)
    assert (base[:, 0] == 0.0).all()  # close relative to close
    sma = frame["close"].rolling(10).mean().to_numpy()
    np.testing.assert_allclose(base[:, 2], sma / frame["close"].to_numpy() - 1.0)


def test_warm_up_rows_stay_missing(frame: pd.DataFrame) -> None:
    matrix = feature_matrix(_spec(), frame)
    assert np.isnan(matrix[: WARMUP - 1]).any(axis=1).all()
    assert np.isfinite(matrix[WARMUP:]).all()


def test_an_unknown_feature_is_rejected_with_the_known_names(frame: pd.DataFrame) -> None:
    spec = _spec()
    assert spec.ml is not None
    spec.ml.features = ["r", "nope"]
    with pytest.raises(ValueError, match=r"unknown ml feature 'nope'.*bb\.pctb"):
        feature_matrix(spec, frame)


def test_every_registry_indicator_has_a_scale() -> None:
    for kind, definition in INDICATORS.items():
        assert kind in INDICATOR_SCALES, f"classify {kind} in INDICATOR_SCALES"
        scales = INDICATOR_SCALES[kind]
        if isinstance(scales, dict):
            assert set(scales) == set(definition.outputs), kind


def test_a_rules_spec_is_not_an_ml_spec(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="not an ml strategy"):
        MlTrainer(StrategySpec(name="r", kind="rules"), split_by_time(frame))


# --- training ----------------------------------------------------------------------------


@pytest.mark.parametrize("classifier", ["logistic", "mlp"])
def test_resuming_from_a_checkpoint_is_exact(frame: pd.DataFrame, classifier: str) -> None:
    spec, splits = _spec(classifier), split_by_time(frame)
    straight = _train(MlTrainer(spec, splits, seed=3))

    first = _train(MlTrainer(spec, splits, seed=3), 4)
    blob = first.checkpoint()
    del first  # the worker died: only the blob survives
    second = _train(MlTrainer.restore(spec, split_by_time(frame.copy()), blob), 3)
    resumed = _train(MlTrainer.restore(spec, splits, second.checkpoint()))

    assert [e.loss for e in resumed.history] == [e.loss for e in straight.history]
    assert _report(resumed) == _report(straight)
    assert resumed.report().resumed_from_epoch == 7
    np.testing.assert_array_equal(
        resumed.validation_probabilities(), straight.validation_probabilities()
    )
    for a, b in zip(
        ml_signals(spec, resumed.model_blob(), frame),
        ml_signals(spec, straight.model_blob(), frame),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


def test_the_same_seed_trains_the_same_model(frame: pd.DataFrame) -> None:
    splits = split_by_time(frame)
    a = _train(MlTrainer(_spec("mlp"), splits, seed=1))
    b = _train(MlTrainer(_spec("mlp"), splits, seed=1))
    c = _train(MlTrainer(_spec("mlp"), splits, seed=2))
    assert _report(a) == _report(b)
    assert _report(a) != _report(c)


class _NoTestSplit:
    """Splits whose test part cannot be read at all."""

    def __init__(self, splits: Any) -> None:
        self._splits = splits
        self.train, self.validation = splits.train, splits.validation
        self.describe = splits.describe

    def through(self, name: str) -> pd.DataFrame:
        assert name != "test", "the test split was read"
        return self._splits.through(name)

    @property
    def test(self) -> pd.DataFrame:
        raise AssertionError("the test split was read")


@pytest.mark.parametrize("poison", [np.nan, 1e9])
def test_the_test_split_is_never_read(frame: pd.DataFrame, poison: float) -> None:
    spec = _spec()
    clean = _train(MlTrainer(spec, split_by_time(frame)))
    splits = split_by_time(frame)
    poisoned = frame.copy()
    poisoned.iloc[len(splits.through("validation")) :] = poison
    guarded = _NoTestSplit(split_by_time(poisoned))
    dirty = _train(MlTrainer(spec, guarded))  # type: ignore[arg-type]
    assert _report(dirty) == _report(clean)


def test_validation_data_never_reaches_the_fit(frame: pd.DataFrame) -> None:
    """Garbage validation bars change validation accuracy, never the train loss curve."""
    spec = _spec()
    clean = _train(MlTrainer(spec, split_by_time(frame)))
    splits = split_by_time(frame)
    start = len(splits.train)
    end = start + len(splits.validation)
    noisy = frame.copy()
    rng = np.random.default_rng(0)
    noisy.iloc[start:end] = rng.uniform(50.0, 150.0, size=(end - start, noisy.shape[1]))
    dirty = _train(MlTrainer(spec, split_by_time(noisy)))
    assert [e.loss for e in dirty.history] == [e.loss for e in clean.history]
    assert [e.validation_accuracy for e in dirty.history] != [
        e.validation_accuracy for e in clean.history
    ]


@pytest.mark.parametrize("classifier", ["logistic", "mlp"])
def test_report_has_what_the_training_gate_needs(frame: pd.DataFrame, classifier: str) -> None:
    splits = split_by_time(frame)
    trainer = _train(MlTrainer(_spec(classifier, epochs=6), splits))
    report = trainer.report()
    assert trainer.done and trainer.epoch == 6
    assert report.kind == "ml"
    assert [e.epoch for e in report.epochs] == [1, 2, 3, 4, 5, 6]
    first, last = report.epochs[0], report.epochs[-1]
    assert report.final_loss == last.loss
    assert report.accuracy == last.validation_accuracy
    assert report.loss_decrease == pytest.approx((first.loss - last.loss) / first.loss)
    assert all(0.0 < e.loss < 5.0 and math.isfinite(e.loss) for e in report.epochs)
    assert all(0.0 <= e.validation_accuracy <= 1.0 for e in report.epochs)
    assert report.resumed_from_epoch == 0
    assert report.splits == splits.describe()
    assert report.validation_log_loss is not None and 0.0 < report.validation_log_loss < 5.0
    assert report.validation_auc is not None and 0.0 <= report.validation_auc <= 1.0
    assert report.auc_p_value is not None and 0.0 <= report.auc_p_value <= 1.0
    assert report.duration_ms > 0.0
    with pytest.raises(RuntimeError, match="already finished"):
        trainer.train_epoch()


@pytest.mark.parametrize("classifier", ["logistic", "mlp"])
def test_a_real_signal_is_learned(classifier: str) -> None:
    frame = _mean_reverting(2500, seed=1)
    spec = _spec(classifier, epochs=15, label_horizon=1)
    report = _train(MlTrainer(spec, split_by_time(frame))).report()
    assert report.accuracy is not None and report.accuracy > 0.6
    assert report.final_loss is not None and report.final_loss < math.log(2.0) - 0.05


def test_the_base_rate_is_the_train_up_rate_scored_on_validation(frame: pd.DataFrame) -> None:
    spec, splits = _spec(), split_by_time(frame)
    assert MlTrainer(spec, splits).report().base_rate_log_loss is None  # no epoch yet
    report = _train(MlTrainer(spec, splits), 2).report()
    horizon, n_train = 5, len(splits.train)
    history = splits.through("validation")
    y_train = labels(splits.train, horizon)
    y_train = y_train[finite_rows(feature_matrix(spec, splits.train)) & np.isfinite(y_train)]
    y_val = labels(history, horizon)[n_train:]
    y_val = y_val[finite_rows(feature_matrix(spec, history)[n_train:]) & np.isfinite(y_val)]
    up = y_train.mean()
    expected = -np.mean(y_val * np.log(up) + (1.0 - y_val) * np.log(1.0 - up))
    assert report.base_rate_log_loss == pytest.approx(expected, rel=1e-12)


def test_base_rate_log_loss_by_hand() -> None:
    # Train up-rate 3/4, forecast constantly on one up and one down validation row.
    got = base_rate_log_loss(np.array([1.0, 1.0, 1.0, 0.0]), np.array([1.0, 0.0]))
    assert got == pytest.approx(-(math.log(0.75) + math.log(0.25)) / 2.0)


def test_auc_p_value_is_the_mann_whitney_test_then_corrected_for_overlap() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.55).astype(float)
    scores = np.round(0.5 + 0.05 * y + 0.2 * rng.standard_normal(400), 2)  # with ties
    result = auc_significance(scores, y)
    assert result is not None
    auc, p_value = result
    assert auc == pytest.approx(roc_auc_score(y, scores))
    expected = mannwhitneyu(
        scores[y == 1], scores[y == 0], alternative="greater", method="asymptotic"
    ).pvalue
    assert p_value == pytest.approx(expected, rel=1e-9)
    # Overlapping labels: z shrinks by sqrt(horizon), an effective n / horizon rows.
    overlapped = auc_significance(scores, y, label_horizon=4)
    assert overlapped is not None and overlapped[0] == auc
    assert overlapped[1] == pytest.approx(norm.sf(norm.isf(p_value) / 2.0), rel=1e-9)
    assert overlapped[1] > p_value


def test_auc_p_value_without_a_ranking_or_a_class() -> None:
    assert auc_significance(np.full(10, 0.5), np.arange(10) % 2) == (0.5, 1.0)
    assert auc_significance(np.linspace(0, 1, 10), np.ones(10)) is None


def _gate_passes(frame: pd.DataFrame, *, seed: int) -> bool:
    trainer = _train(MlTrainer(_spec(epochs=10), split_by_time(frame), seed=seed))
    return training_gate(trainer.report(), TrainingGateThresholds()).passed


def test_the_default_gate_rejects_models_of_pure_noise() -> None:
    """Seed 002's gate rejected everything; accuracy alone passed most noise models."""
    passed = [
        _gate_passes(synthetic_ohlcv(bars=2000, seed=s, regimes=False, drift=0.0), seed=s)
        for s in range(20)
    ]
    assert sum(passed) <= 3  # >= 85 % rejected (measured: 98 % of 200 seeds)


def test_the_default_gate_accepts_a_planted_edge() -> None:
    passed = [_gate_passes(_momentum(2000, seed=s), seed=s) for s in range(20)]
    assert sum(passed) >= 17  # measured: 96 % of 100 seeds pass


def test_a_checkpoint_of_another_spec_is_rejected(frame: pd.DataFrame) -> None:
    splits = split_by_time(frame)
    blob = _train(MlTrainer(_spec(), splits), 2).checkpoint()
    with pytest.raises(ValueError, match="different strategy spec"):
        MlTrainer.restore(_spec("mlp"), splits, blob)
    other = _spec()
    assert other.ml is not None
    other.ml.features = ["r", "z"]
    with pytest.raises(ValueError, match="different strategy spec"):
        MlTrainer.restore(other, splits, blob)
    with pytest.raises(ValueError, match="different train/validation data"):
        MlTrainer.restore(_spec(), split_by_time(synthetic_ohlcv(bars=BARS, seed=8)), blob)
    with pytest.raises(ValueError, match="not a readable ml checkpoint"):
        MlTrainer.restore(_spec(), splits, b"not a pickle")


def test_a_checkpoint_of_another_format_or_library_version_is_rejected(
    frame: pd.DataFrame,
) -> None:
    splits = split_by_time(frame)
    state = pickle.loads(_train(MlTrainer(_spec(), splits), 1).checkpoint())
    with pytest.raises(ValueError, match=r"scikit-learn 0\.1"):
        MlTrainer.restore(_spec(), splits, pickle.dumps({**state, "sklearn": "0.1"}))
    with pytest.raises(ValueError, match="format 99"):
        MlTrainer.restore(_spec(), splits, pickle.dumps({**state, "format": 99}))


def test_a_spec_that_went_through_json_keeps_its_checkpoint(frame: pd.DataFrame) -> None:
    splits, spec = split_by_time(frame), _spec()
    blob = _train(MlTrainer(spec, splits), 2).checkpoint()
    data = spec.model_dump(mode="json")
    data["ml"] = dict(reversed(list(data["ml"].items())))  # JSONB reorders keys
    data["name"] = "renamed"  # names do not change the model
    restored = MlTrainer.restore(StrategySpec.model_validate(data), splits, blob)
    assert restored.epoch == 2


# --- signals -----------------------------------------------------------------------------


def test_signals_cover_every_bar_and_skip_the_warm_up(frame: pd.DataFrame) -> None:
    spec = _spec(threshold=0.5, exit_threshold=0.5)
    blob = _train(MlTrainer(spec, split_by_time(frame)), 3).model_blob()
    entries, exits = ml_signals(spec, blob, frame)
    assert entries.shape == exits.shape == (len(frame),)
    assert entries.dtype == exits.dtype == np.bool_
    assert not entries[: WARMUP - 1].any() and not exits[: WARMUP - 1].any()
    # With both thresholds at 0.5 every usable bar is exactly one of entry or exit.
    assert (entries[WARMUP:] ^ exits[WARMUP:]).all()


def test_signals_need_the_features_the_model_was_trained_on(frame: pd.DataFrame) -> None:
    spec = _spec()
    blob = _train(MlTrainer(spec, split_by_time(frame)), 1).model_blob()
    other = _spec()
    assert other.ml is not None
    other.ml.features = ["z", "r"]
    with pytest.raises(ValueError, match="trained on features"):
        ml_signals(other, blob, frame)
    with pytest.raises(RuntimeError, match="no epoch trained"):
        MlTrainer(spec, split_by_time(frame)).model_blob()


# --- walk-forward ----------------------------------------------------------------------


def _folds(bars: int) -> list[Fold]:
    return anchored_folds(bars, folds=5, first_test=0.4)


@pytest.fixture(scope="module")
def edge() -> pd.DataFrame:
    """Bars with something to learn, so the models signal in every block."""
    return _mean_reverting(2500, seed=1)


WF_SPEC = _spec(epochs=5, label_horizon=1)


def test_walk_forward_signals_only_in_test_blocks_and_deterministic(edge: pd.DataFrame) -> None:
    spec, folds = WF_SPEC, _folds(len(edge))
    entries, exits = walk_forward_signals(spec, edge, folds, seed=3)
    first = folds[0].test_start
    assert not entries[:first].any() and not exits[:first].any()
    for fold in folds:
        assert entries[fold.test_start : fold.test_end].any()
        assert exits[fold.test_start : fold.test_end].any()
    again = walk_forward_signals(spec, edge, folds, seed=3)
    assert np.array_equal(entries, again[0]) and np.array_equal(exits, again[1])


def test_walk_forward_never_reads_past_a_blocks_end(edge: pd.DataFrame) -> None:
    """Each fold's model and its block's signals depend on the bars up to the block's end
    only: poisoning every later bar leaves every earlier signal as it was."""
    spec, folds, bars = WF_SPEC, _folds(len(edge)), len(edge)
    entries, exits = walk_forward_signals(spec, edge, folds, seed=3)
    for fold in folds[:-1]:
        poisoned = edge.copy()
        poisoned.iloc[fold.test_end :, :4] *= np.linspace(0.2, 5.0, bars - fold.test_end)[:, None]
        e, x = walk_forward_signals(spec, poisoned, folds, seed=3)
        assert np.array_equal(e[: fold.test_end], entries[: fold.test_end])
        assert np.array_equal(x[: fold.test_end], exits[: fold.test_end])


def test_walk_forward_models_learn_from_their_fold_past_only(edge: pd.DataFrame) -> None:
    """Changing the bars of a fold's own test block changes that block's features, not the
    model: a model fitted on the block would change the signals of the block before it."""
    spec, folds = WF_SPEC, _folds(len(edge))
    entries, _ = walk_forward_signals(spec, edge, folds, seed=3)
    last = folds[-1]
    poisoned = edge.copy()
    poisoned.iloc[last.test_start :, :4] *= 3.0
    e, _ = walk_forward_signals(spec, poisoned, folds, seed=3)
    assert np.array_equal(e[: last.test_start], entries[: last.test_start])


def test_walk_forward_learns_a_planted_edge(edge: pd.DataFrame) -> None:
    entries, _ = walk_forward_signals(WF_SPEC, edge, _folds(len(edge)), seed=0)
    close = edge["close"].to_numpy()
    up_next = np.r_[close[1:] > close[:-1], False]
    tested = np.arange(len(edge)) >= _folds(len(edge))[0].test_start
    # Entries are where the models expect a rise: the next close rises far more often there.
    assert up_next[entries].mean() > up_next[tested & ~entries].mean() + 0.1

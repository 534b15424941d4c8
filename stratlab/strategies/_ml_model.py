"""The classifiers of the ``ml`` strategy kind: how one is built and how it forecasts.

``make_classifier`` builds the two kinds ``MlSpec.classifier`` names, deterministic from a
seed and fitted only by ``partial_fit`` passes in an order the caller draws (so training
resumes exactly); ``up_probability`` is a fitted one's probability that the close goes up.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier

CLASSES = np.array([0.0, 1.0])
"""The label classes: 1.0 when the close ``label_horizon`` bars ahead is higher."""
Classifier: TypeAlias = SGDClassifier | MLPClassifier


def make_classifier(kind: str, *, seed: int) -> Classifier:
    # shuffle=False: the trainer shuffles with its own checkpointed generator, so the
    # order of every epoch is reproducible after a restore. A small inverse-scaling step
    # rather than SGD's default "optimal" schedule, whose huge first steps make epoch 1's
    # loss an overshoot (3.3 on sp500) and the loss "decrease" an artefact of it.
    if kind == "logistic":
        return SGDClassifier(
            loss="log_loss",
            alpha=1e-3,
            learning_rate="invscaling",
            eta0=0.01,
            shuffle=False,
            random_state=seed,
        )
    if kind == "mlp":
        return MLPClassifier(
            hidden_layer_sizes=(16,),
            alpha=1e-3,
            batch_size=64,
            learning_rate_init=1e-3,
            shuffle=False,
            random_state=seed,
        )
    raise ValueError(f"unknown ml classifier {kind!r}; expected 'logistic' or 'mlp'")


def up_probability(classifier: Classifier, x: np.ndarray) -> np.ndarray:
    """P(up), the probability of class 1.0, of each row of ``x``."""
    if x.shape[0] == 0:
        return np.empty(0)
    column = int(np.flatnonzero(classifier.classes_ == 1.0)[0])
    return classifier.predict_proba(x)[:, column]


def fit_epoch(
    classifier: Classifier, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> None:
    """One epoch: a ``partial_fit`` pass over the rows in an order drawn from ``rng``. The
    trainer and the walk-forward folds both fit this way, so a fold's model is the model
    the trainer would fit on the same rows from the same seed."""
    order = rng.permutation(y.shape[0])
    classifier.partial_fit(x[order], y[order], classes=CLASSES)

"""Statistics that decide whether a strategy's out-of-sample result beats luck.

A backtest that searched many variants reports the best of them, and the best of many
noisy Sharpe ratios is high even when no variant has an edge. The functions here turn a
result into a probability that accounts for that search, for the track's length and for
non-normal returns:

* ``probabilistic_sharpe_ratio`` and ``min_track_record_length`` (Bailey & López de Prado
  2012) test one Sharpe ratio against a benchmark Sharpe ratio.
* ``expected_max_sharpe`` and ``deflated_sharpe_ratio`` (Bailey & López de Prado 2014) set
  that benchmark to the best Sharpe ratio luck alone would deliver over the trials run;
  ``average_correlation`` and ``effective_trials`` say how many trials were independent,
  ``null_sharpe_variance`` floors the trials' dispersion.
* ``excess_returns`` removes the share of a benchmark's drift a strategy earns by merely
  being in the market.

Every Sharpe ratio is PER BAR (mean / standard deviation of bar returns, never
annualised), because that is the unit the papers' formulas are written in: an annual
figure must be divided by sqrt(bars per year) before it comes here. Skewness is γ3 and
kurtosis γ4 is NON-excess (3 for normal returns). Every function is pure: arrays in,
a float or a frozen dataclass out. How often a grid's in-sample winner fails out of
sample (PBO, CSCV) is in ``stratlab.backtest.pbo``.

References:

* Bailey, D. H. & López de Prado, M. (2012). "The Sharpe Ratio Efficient Frontier".
  Journal of Risk 15(2). (PSR, MinTRL.)
* Bailey, D. H. & López de Prado, M. (2014). "The Deflated Sharpe Ratio: Correcting for
  Selection Bias, Backtest Overfitting and Non-Normality". Journal of Portfolio
  Management 40(5). (Expected maximum Sharpe, DSR, number of trials.)
* Lo, A. (2002). "The Statistics of Sharpe Ratios". Financial Analysts Journal 58(4);
  Mertens, E. (2002). "Comments on variance of the IID estimator in Lo (2002)".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from stratlab.backtest._returns import FLAT, as_matrix, finite

EULER_GAMMA = 0.5772156649015329
"""The Euler–Mascheroni constant γ of the expected-maximum formula."""

_MIN_SPREAD = 1e-12  # floor of the PSR variance factor, which only a two-point law zeroes


@dataclass(frozen=True, slots=True)
class DeflatedSharpe:
    """A deflated Sharpe ratio and the benchmark it was deflated against.

    ``probability`` is the DSR, the probability that the true Sharpe ratio beats
    ``benchmark_sharpe`` (SR0, the expected best per-bar Sharpe of ``trials`` skill-less
    trials whose Sharpe estimates have variance ``trial_variance``).
    """

    probability: float
    benchmark_sharpe: float
    trials: float
    trial_variance: float


def sharpe_per_bar(returns: npt.ArrayLike) -> float:
    """Per-bar Sharpe ratio ``mean / std(ddof=1)`` of the finite returns, zero risk-free rate.

    0.0 with fewer than two finite returns or a spread below 1e-12 (a flat series has no
    meaningful ratio, and reading it as huge would pass any significance test).
    """
    values = finite(returns)
    if values.size < 2:
        return 0.0
    std = float(np.std(values, ddof=1))
    return float(np.mean(values)) / std if std >= FLAT else 0.0


def return_moments(returns: npt.ArrayLike) -> tuple[float, float]:
    """``(skewness γ3, kurtosis γ4)`` of the finite returns; γ4 is NOT excess (normal: 3).

    Sample moments m_k = mean((r - mean r)^k), γ3 = m3 / m2^1.5, γ4 = m4 / m2^2: the plug-in
    estimates Bailey & López de Prado (2012, 2014) put into the PSR and DSR. Fewer than
    three finite values or a flat series give the normal (0.0, 3.0): there is no evidence
    of non-normality to penalise.
    """
    values = finite(returns)
    if values.size < 3 or float(np.std(values)) < FLAT:
        return 0.0, 3.0
    centred = values - values.mean()
    m2 = float(np.mean(centred**2))
    m3 = float(np.mean(centred**3))
    m4 = float(np.mean(centred**4))
    return m3 / m2**1.5, m4 / m2**2


def probabilistic_sharpe_ratio(
    *,
    sharpe: float,
    benchmark_sharpe: float,
    bars: int,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """Probability that the true per-bar Sharpe ratio exceeds ``benchmark_sharpe``.

    Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier", the PSR
    equation (§3)::

        PSR(SR*) = Φ( (SR - SR*) · sqrt(T - 1) / sqrt(1 - γ3·SR + (γ4 - 1)/4 · SR²) )

    with SR the observed per-bar Sharpe ratio over T = ``bars`` returns of skewness γ3 and
    (non-excess) kurtosis γ4. The square root is SR's asymptotic standard error times
    sqrt(T - 1) (Mertens 2002). Fewer than two bars give 0.0: with no estimate there is no
    evidence.
    """
    if bars < 2:
        return 0.0
    spread = _sharpe_spread(sharpe, skew, kurtosis)
    return float(ndtr((sharpe - benchmark_sharpe) * math.sqrt(bars - 1) / spread))


def expected_max_sharpe(*, trials: float, variance: float) -> float:
    """Expected best per-bar Sharpe ratio of ``trials`` skill-less trials (SR0).

    Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", the expected-maximum
    approximation (the "False Strategy" result) with E[{SR_n}] = 0::

        SR0 = sqrt(V) · ((1 - γ)·Φ⁻¹(1 - 1/N) + γ·Φ⁻¹(1 - 1/(N·e)))

    γ the Euler–Mascheroni constant, V = ``variance`` the variance of the trials' Sharpe
    estimates, N = ``trials``, which may be fractional (an effective number of trials).
    N ≤ 1 or V ≤ 0 gives 0.0: one trial, or trials that do not vary, select nothing.
    The approximation is for large N; just above N = 1 it turns negative, while the best
    of one trial averages zero, so it is floored at 0.0 (continuous and increasing in N).
    """
    if trials <= 1 or variance <= 0:
        return 0.0
    core = (1 - EULER_GAMMA) * ndtri(1 - 1 / trials) + EULER_GAMMA * ndtri(
        1 - 1 / (trials * math.e)
    )
    # Checked before scaling so that an infinite variance times a zero core is 0, not nan.
    return math.sqrt(variance) * float(core) if core > 0 else 0.0


def deflated_sharpe_ratio(
    *,
    sharpe: float,
    bars: int,
    trials: float,
    trial_variance: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> DeflatedSharpe:
    """The deflated Sharpe ratio of the best of ``trials`` trials.

    Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", the DSR equation::

        DSR = PSR(SR0) = Φ( (SR - SR0) · sqrt(T - 1) / sqrt(1 - γ3·SR + (γ4 - 1)/4 · SR²) )

    with SR0 = ``expected_max_sharpe(trials=N, variance=V)``. ``trial_variance`` is V as
    given: a caller estimating it from few or correlated trials should floor it with
    ``null_sharpe_variance(bars)`` and pass an ``effective_trials`` count.
    """
    benchmark = expected_max_sharpe(trials=trials, variance=trial_variance)
    probability = probabilistic_sharpe_ratio(
        sharpe=sharpe, benchmark_sharpe=benchmark, bars=bars, skew=skew, kurtosis=kurtosis
    )
    return DeflatedSharpe(
        probability=probability,
        benchmark_sharpe=benchmark,
        trials=float(trials),
        trial_variance=float(trial_variance),
    )


def null_sharpe_variance(bars: int) -> float:
    """Sampling variance of a per-bar Sharpe estimate when SR = 0 and returns are normal.

    Lo (2002) and Mertens (2002): Var(SR̂) ≈ (1 - γ3·SR + (γ4 - 1)/4 · SR²) / (T - 1),
    which at SR = 0 is 1/(T - 1) (the same T - 1 as the PSR; the exact t-distribution value
    (T - 1)/(T·(T - 3)) differs by O(1/T²)). It floors the trials' Sharpe variance V of the
    DSR because even N truly skill-less, independent trials scatter that much by sampling
    noise alone: an empirical V below it comes from too few trials to measure dispersion,
    or from trials so alike that they are fewer than N, which ``effective_trials`` counts.
    Fewer than two bars give ``inf``: no finite floor bounds a Sharpe that cannot be
    estimated (the DSR is then 0).
    """
    return 1.0 / (bars - 1) if bars >= 2 else math.inf


def min_track_record_length(
    *,
    sharpe: float,
    benchmark_sharpe: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
    confidence: float = 0.95,
) -> float:
    """Bars needed for the PSR of ``sharpe`` against ``benchmark_sharpe`` to reach ``confidence``.

    Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier", the MinTRL
    equation (§4)::

        MinTRL = 1 + (1 - γ3·SR + (γ4 - 1)/4 · SR²) · (Φ⁻¹(confidence) / (SR - SR*))²

    the PSR equation solved for T, so PSR at T = MinTRL equals ``confidence``. ``inf`` when
    SR ≤ SR*: no track record is long enough to show a Sharpe above a higher benchmark.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if sharpe <= benchmark_sharpe:
        return math.inf
    spread = _sharpe_spread(sharpe, skew, kurtosis)
    return 1.0 + (spread * float(ndtri(confidence)) / (sharpe - benchmark_sharpe)) ** 2


def average_correlation(returns_matrix: npt.ArrayLike) -> float:
    """Mean pairwise Pearson correlation of the columns of a (bars, M) matrix.

    O(bars·M) instead of the O(bars·M²) correlation matrix: with z_j the column j
    standardised with population moments (so sum_t z_tj² = T), corr_ij = sum_t z_ti·z_tj / T
    and hence ``||sum_j z_j||² = T·(M + sum_{i≠j} corr_ij)``, which gives the mean over the
    M(M - 1) ordered pairs. Flat columns (std below 1e-12) have no correlation and are
    left out; fewer than two usable columns, or fewer than two bars, give 0.0. Non-finite
    entries are read as 0 (a bar without a recorded return made nothing).
    """
    matrix = as_matrix(returns_matrix)
    if matrix.shape[0] < 2:
        return 0.0
    std = matrix.std(axis=0)
    usable = std >= FLAT
    columns = int(usable.sum())
    if columns < 2:
        return 0.0
    z = (matrix[:, usable] - matrix[:, usable].mean(axis=0)) / std[usable]
    bars = matrix.shape[0]
    pair_sum = float(np.sum(z.sum(axis=1) ** 2)) / bars - columns
    return pair_sum / (columns * (columns - 1))


def effective_trials(*, trials: int, avg_correlation: float) -> float:
    """Effective number of independent trials among ``trials`` correlated ones.

    Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", the approximation for
    correlated trials (section on the number of trials)::

        N̂ = ρ̄ + (1 - ρ̄)·M

    with ρ̄ the average correlation of the M trials' returns, clipped to [0, 1] (negative
    average correlation cannot make trials more than independent), so N̂ is in [1, M] for
    M ≥ 1 and 0 for M = 0. A nan ρ̄ counts as 0: the conservative choice, every trial
    independent.
    """
    if trials <= 0:
        return 0.0
    rho = 0.0 if math.isnan(avg_correlation) else min(max(avg_correlation, 0.0), 1.0)
    return rho + (1.0 - rho) * trials


def excess_returns(
    returns: npt.ArrayLike, benchmark_returns: npt.ArrayLike, exposure: float
) -> np.ndarray:
    """Bar returns minus an exposure-matched benchmark: ``r_t - ē·b_t``.

    ē = ``exposure`` is the fraction of bars the strategy held a position (in [0, 1]). A
    long-only strategy that is in the market ē of the time earns about ē times the
    benchmark's drift by luck alone (entering at random does that), so its significance
    is judged on these excess returns, not on its raw returns against zero. Non-finite
    values propagate.
    """
    if not 0.0 <= exposure <= 1.0:
        raise ValueError(f"exposure must be a fraction in [0, 1], got {exposure}")
    strategy = np.asarray(returns, dtype=float)
    benchmark = np.asarray(benchmark_returns, dtype=float)
    if strategy.shape != benchmark.shape:
        raise ValueError(f"shapes differ: {strategy.shape} vs {benchmark.shape}")
    return strategy - exposure * benchmark


# --- private helpers -------------------------------------------------------------------


def _sharpe_spread(sharpe: float, skew: float, kurtosis: float) -> float:
    """sqrt(1 - γ3·SR + (γ4 - 1)/4 · SR²), the PSR/MinTRL denominator.

    Since γ4 ≥ 1 + γ3² for any distribution, the radicand is ≥ (1 - γ3·SR/2)² ≥ 0; it is
    zero only for a two-point law at SR = 2/γ3, or for inconsistent moment inputs, and is
    floored so those give a decisive rather than an undefined probability.
    """
    radicand = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    return math.sqrt(max(radicand, _MIN_SPREAD))

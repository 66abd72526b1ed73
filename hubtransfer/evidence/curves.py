"""Numbers read off learning curves and data-size curves.

Transfer is said to help in three ways (a higher start, a higher slope, a higher asymptote);
:func:`curve_stats` measures each on one run's validation curve so two runs can be compared.
:func:`saturating_fit` fits ``metric(n) = a - b * n**-c`` to a data-size sweep and inverts it for
the examples a target needs, with a bootstrap interval.
"""

from __future__ import annotations

import math
import warnings

import numpy as np


def curve_stats(history: list[dict], metric: str) -> dict:
    """Start, slope and asymptote of one validation curve (``metrics.jsonl`` records, step 0 first if evaluated).

    Returns:
        ``start`` (metric at step 0, None when not evaluated), ``first`` (at the first evaluation
        after training began) and its step, ``auc`` (mean metric over the run: the trapezoid area
        under metric-vs-step divided by the steps; a faster learner has more area), ``steps_to_90``
        (first evaluated step reaching 90% of the final value), ``best``, ``final``, ``steps``.
    """
    points = [(r["step"], r["validation"][metric]) for r in history if metric in (r.get("validation") or {})]
    if not points:
        raise ValueError(f"no validation '{metric}' in the history; was the run evaluated?")
    steps = np.array([p[0] for p in points], dtype=float)
    values = np.array([p[1] for p in points], dtype=float)
    start = float(values[0]) if steps[0] == 0 else None
    trained = [(s, v) for s, v in points if s > 0]
    first_step, first = trained[0] if trained else (None, None)
    final = float(values[-1])
    span = steps[-1] - steps[0]
    auc = float(np.trapezoid(values, steps) / span) if span > 0 else final
    reached = [s for s, v in points if v >= 0.9 * final]
    return {
        "start": start,
        "first": first,
        "first_step": first_step,
        "auc": round(auc, 5),
        "steps_to_90": int(reached[0]),
        "best": float(values.max()),
        "final": final,
        "steps": int(steps[-1]),
    }


def steps_to(history: list[dict], metric: str, threshold: float) -> int | None:
    """First evaluated step whose validation ``metric`` reaches ``threshold`` (None: never)."""
    for r in history:
        if (r.get("validation") or {}).get(metric, -math.inf) >= threshold:
            return int(r["step"])
    return None


def _power(n, a, b, c):
    return a - b * np.power(n, -c)


def _fit_once(n: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    from scipy.optimize import curve_fit

    top = float(y.max())
    # a: the asymptote, at least the best seen and at most a perfect score; c > 0 keeps the curve rising.
    p0 = (min(1.0, top + 0.02), max(1e-3, (top - float(y.min())) * float(n.min()) ** 0.5 + 1e-3), 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            params, _ = curve_fit(
                _power, n, y, p0=p0, bounds=([top - 1e-9, 0.0, 0.01], [1.0 + 1e-9, np.inf, 3.0]), maxfev=20000
            )
        except (RuntimeError, ValueError):
            return None
    return params


def examples_for(params, target: float) -> float:
    """Examples the fitted curve needs to reach ``target`` (inf when its asymptote stays below)."""
    a, b, c = params
    if a <= target:
        return math.inf
    if b <= 0:
        return 0.0
    return float((b / (a - target)) ** (1.0 / c))


def saturating_fit(
    n: list[float], y: list[float], target: float | None = None, *, boots: int = 300, seed: int = 0, level: float = 0.8
) -> dict:
    """Fit ``a - b * n**-c`` (a: the asymptote, at most 1) to (examples, metric) points, several per size allowed.

    The interval comes from a residual bootstrap: refit on fitted values plus resampled residuals,
    ``boots`` times; ``level`` is its central coverage. With few sizes it is wide, and says so.
    """
    n_arr, y_arr = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    if len(set(n_arr.tolist())) < 3:
        raise ValueError(f"a saturating fit needs at least three data sizes, got {sorted(set(n_arr.tolist()))}")
    params = _fit_once(n_arr, y_arr)
    if params is None:
        raise ValueError("the saturating fit did not converge on these points")
    fitted = _power(n_arr, *params)
    resid = y_arr - fitted
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(boots):
        p = _fit_once(n_arr, fitted + rng.choice(resid, size=len(resid), replace=True))
        if p is not None:
            samples.append(p)
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    out = {
        "a": float(params[0]),
        "b": float(params[1]),
        "c": float(params[2]),
        "rmse": float(np.sqrt(np.mean(resid**2))),
        "asymptote_interval": [float(np.quantile([s[0] for s in samples], q)) for q in (lo_q, hi_q)]
        if samples
        else None,
        "level": level,
        "boots": len(samples),
        # The asymptote pinned at its upper bound: the points show no plateau yet, so it is not identified
        # and the fit serves to interpolate between the sizes measured, not to predict beyond them.
        "asymptote_at_bound": bool(params[0] >= 1.0 - 1e-3),
    }
    if target is not None:
        need = [examples_for(s, target) for s in samples]
        out["target"] = target
        out["examples_needed"] = examples_for(params, target)
        # "nearest": a bootstrap curve that never reaches the target counts as inf, and interpolating to inf gives NaN
        out["examples_interval"] = (
            [float(np.quantile(need, q, method="nearest")) for q in (lo_q, hi_q)] if need else None
        )
        out["share_unreachable"] = float(np.mean([math.isinf(x) for x in need])) if need else None
    return out


def measured_crossing(n: list[float], y: list[float], target: float) -> float | None:
    """Examples where the measured curve (means per size, log-linear between sizes) first reaches ``target``."""
    sizes = sorted(set(n))
    means = [float(np.mean([v for m, v in zip(n, y) if m == s])) for s in sizes]
    if means[0] >= target:
        return float(sizes[0])
    for (n0, y0), (n1, y1) in zip(zip(sizes, means), zip(sizes[1:], means[1:])):
        if y0 < target <= y1:
            t = (target - y0) / (y1 - y0)
            return float(math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0))))
    return None

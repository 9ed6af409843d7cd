"""``<predict>`` blocks: the founding document's L_pred — fit a small statistical model, predict.

Block grammar (one item a line, order free)::

    2019: 120          x: y pairs (years, steps, …)   or   values: 3, 5, 8, 12
    2020: 131
    at: 2023           where to predict (default: the next x after the data)
    model: linear      linear (default) | mean | median | growth | last

The output names the model, its fitted parameters, and the prediction with an uncertainty:
a 95% prediction interval for ``linear`` (from the residual spread), the sample standard
deviation for ``mean``/``median``, the spread of period growth rates for ``growth``.
"""

from __future__ import annotations

import math
import re
import time

import numpy as np

from latent_env.tools.base import Tool, ToolOutput
from latent_env.tools.calc import format_number

MAX_POINTS = 1000
MODELS = ("linear", "mean", "median", "growth", "last")
NUMBER = r"[-+]?\d+(?:\.\d+)?"
PAIR_LINE = re.compile(rf"^\s*({NUMBER})\s*[:=,]\s*({NUMBER})\s*$")
# The value is everything after the key, stripped in Python: a lazy ``(.+?)\s*$`` backtracks
# quadratically over a long line (1.2 s for 16,000 characters, in the trainer's process).
KEY_LINE = re.compile(r"^\s*(values|at|model|x|predict)\s*[:=](.*)$", re.IGNORECASE)


class PredictError(ValueError):
    """Input the predictor cannot use; the message says what was expected."""


class PredictTool(Tool):
    """Fit linear trend / mean / median / growth to numbers in the block and predict one value."""

    name = "predict"
    tag = "predict"
    description = "Numbers as 'x: y' lines or 'values: …', plus 'at: X' and 'model: linear'."

    def run(self, text: str) -> ToolOutput:
        start = time.perf_counter()
        try:
            xs, ys, at, model = parse_block(text)
            summary = fit_and_predict(xs, ys, at, model)
        except PredictError as exc:
            return ToolOutput.failure("error", str(exc), time.perf_counter() - start)
        return ToolOutput("ok", summary, None, time.perf_counter() - start)


def parse_block(text: str) -> tuple[np.ndarray, np.ndarray, float | None, str]:
    xs: list[float] = []
    ys: list[float] = []
    at: float | None = None
    model = "linear"
    for line in text.splitlines():
        if not line.strip():
            continue
        pair = PAIR_LINE.match(line)
        key = KEY_LINE.match(line)
        if pair:
            xs.append(float(pair.group(1)))
            ys.append(float(pair.group(2)))
        elif key and key.group(1).lower() == "values":
            values = [float(v) for v in re.findall(NUMBER, key.group(2))]
            start = len(xs)
            xs.extend(float(start + i + 1) for i in range(len(values)))
            ys.extend(values)
        elif key and key.group(1).lower() in ("at", "x", "predict"):
            found = re.findall(NUMBER, key.group(2))
            if not found:
                raise PredictError(f"'at:' needs a number, got {key.group(2).strip()!r}")
            at = float(found[0])
        elif key and key.group(1).lower() == "model":
            model = key.group(2).strip().lower()
            if model not in MODELS:
                raise PredictError(f"unknown model '{model}'; choose one of {', '.join(MODELS)}")
        else:
            raise PredictError(f"cannot read line {line.strip()[:40]!r}; use 'x: y' or 'values: …'")
        if len(xs) > MAX_POINTS:
            raise PredictError(f"more than {MAX_POINTS} data points")
    if len(ys) < 2:
        raise PredictError("need at least two data points")
    return np.array(xs), np.array(ys), at, model


def fit_and_predict(xs: np.ndarray, ys: np.ndarray, at: float | None, model: str) -> str:
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    step = float(np.median(np.diff(xs))) if len(xs) > 1 else 1.0
    at = float(xs[-1] + (step or 1.0)) if at is None else at
    if model == "linear":
        return _linear(xs, ys, at)
    if model in ("mean", "median"):
        center = float(np.mean(ys) if model == "mean" else np.median(ys))
        spread = float(np.std(ys, ddof=1))
        return f"{model} of {len(ys)} values: {_fmt(center)} (sd {_fmt(spread)})"
    if model == "growth":
        return _growth(xs, ys, at, step)
    return f"last value: {_fmt(float(ys[-1]))}"


def _linear(xs: np.ndarray, ys: np.ndarray, at: float) -> str:
    slope, intercept = np.polyfit(xs, ys, 1)
    predicted = slope * at + intercept
    n = len(xs)
    if n > 2:
        residuals = ys - (slope * xs + intercept)
        s = math.sqrt(float(residuals @ residuals) / (n - 2))
        spread_x = float(((xs - xs.mean()) ** 2).sum())
        se = s * math.sqrt(1 + 1 / n + (at - xs.mean()) ** 2 / spread_x)
        band = f" ± {_fmt(1.96 * se)} (95% interval)"
    else:
        band = " (two points: no uncertainty estimate)"
    return (
        f"linear trend: y = {_fmt(slope)}·x + {_fmt(intercept)}; "
        f"prediction at {_fmt(at)}: {_fmt(predicted)}{band}"
    )


def _growth(xs: np.ndarray, ys: np.ndarray, at: float, step: float) -> str:
    if np.any(ys[:-1] == 0):
        raise PredictError("growth needs non-zero values")
    rates = ys[1:] / ys[:-1]
    rate = float(np.exp(np.mean(np.log(np.abs(rates)))))
    periods = (at - xs[-1]) / (step or 1.0)
    predicted = float(ys[-1]) * rate**periods
    sd = float(np.std(rates, ddof=1)) if len(rates) > 1 else 0.0
    return (
        f"growth: ×{_fmt(rate)} per step (sd {_fmt(sd)}); "
        f"prediction at {_fmt(at)}: {_fmt(predicted)}"
    )


def _fmt(value: float) -> str:
    if math.isfinite(value) and abs(value - round(value)) < 1e-9:
        return format_number(float(round(value)))
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.6g}"

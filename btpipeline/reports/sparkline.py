"""A tiny SVG of the portfolio's equity (top) and drawdown (bottom) as a data URI.

Dagster's asset page renders a markdown metadata value inline only when it is shorter than
1,000 characters (``MetadataEntry.tsx`` in the UI: ``mdStr.length < 1000``); anything longer,
such as a base64 PNG, hides behind a "[Show Markdown]" link. A PNG chart never fits, so the
inline view draws the curves as an SVG of relative path moves, percent-encoded (no base64),
down-sampled until the whole markdown image fits ``budget`` characters.
"""

from __future__ import annotations

from urllib.parse import quote

import numpy as np
import pandas as pd

# 480 px wide: the value column of Dagster's metadata table is ~560 px at a 1,600 px window.
WIDTH, EQUITY_HEIGHT, DRAWDOWN_HEIGHT, GAP = 480, 90, 40, 6
MIN_POINTS = 8
SAFE = "/:=,.'"  # left as they are in the URL; spaces, <, > and the rest are %-encoded


def _sample(values: np.ndarray, points: int) -> np.ndarray:
    if values.shape[0] <= points:
        return values
    return values[np.linspace(0, values.shape[0] - 1, points).round().astype(int)]


def _path(values: np.ndarray, top: int, height: int, low: float, high: float) -> str:
    """``M x,y`` then relative ``l dx,dy`` moves, integer pixels."""
    span = high - low or 1.0
    ys = (top + (high - values) / span * height).round().astype(int)
    xs = np.linspace(0, WIDTH, values.shape[0]).round().astype(int)
    moves = "".join(f"l{dx},{dy}" for dx, dy in zip(np.diff(xs), np.diff(ys), strict=True))
    return f"M0,{ys[0]}{moves}"


def _svg(equity: np.ndarray, drawdown: np.ndarray, capital: float) -> str:
    low, high = min(equity.min(), capital), max(equity.max(), capital)
    dd_top = EQUITY_HEIGHT + GAP
    dd_low = min(float(drawdown.min()), -1e-9)
    height = dd_top + DRAWDOWN_HEIGHT
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {height}' "
            f"width='{WIDTH}' height='{height}' fill='none' stroke-width='1.5'>"
            f"<path stroke='black' d='{_path(equity, 0, EQUITY_HEIGHT, low, high)}'/>"
            f"<path stroke='red' d='{_path(drawdown, dd_top, DRAWDOWN_HEIGHT, dd_low, 0.0)}'/>"
            "</svg>")


def sparkline_markdown(equity: pd.Series, drawdown: pd.Series, capital: float, alt: str,
                       budget: int = 990) -> str:
    """``![alt](data:image/svg+xml,...)`` no longer than ``budget`` characters (fewer points
    until it fits; at worst ``MIN_POINTS``)."""
    points = 200
    while True:
        svg = _svg(_sample(equity.to_numpy(float), points),
                   _sample(drawdown.to_numpy(float), points), capital)
        text = f"![{alt}](data:image/svg+xml,{quote(svg, safe=SAFE)})"
        if len(text) <= budget or points <= MIN_POINTS:
            return text
        points = max(MIN_POINTS, int(points * 0.8))

"""A sweep's heatmap (inline markdown under Dagster's ~1,000-character limit) and HTML file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from btpipeline.sweeps.heatmap import INLINE_LIMIT, heatmap_png, inline_markdown, pivot, text_table
from btpipeline.sweeps.report import write_report


def _table(fast: int = 3, slow: int = 4) -> pd.DataFrame:
    rows = [{"fast": f, "slow": s, "signal": g, "sharpe": f * 0.1 - s * 0.01 + g * 0.001,
             "max_drawdown": 0.01 * (f + s + g)}
            for f in range(2, 2 + fast) for s in range(20, 20 + slow) for g in (5, 9)]
    return pd.DataFrame(rows)


def test_the_pivot_keeps_the_best_value_over_other_parameters() -> None:
    grid = pivot(_table(), "fast", "slow", "sharpe")
    assert grid.shape == (3, 4) and grid.loc[2, 20] == pytest.approx(0.2 - 0.2 + 0.009)
    worst = pivot(_table(), "fast", "slow", "max_drawdown")
    assert worst.loc[2, 20] == pytest.approx(0.01 * (2 + 20 + 5))  # lower is better: the minimum


def test_the_inline_heatmap_fits_dagsters_limit() -> None:
    for fast, slow in ((3, 4), (25, 20)):
        markdown = inline_markdown(pivot(_table(fast, slow), "fast", "slow", "sharpe"), "sharpe")
        assert len(markdown) < INLINE_LIMIT
        assert markdown.startswith("![sharpe by fast x slow](data:image/png;base64,")


def test_the_text_table_has_a_row_per_value() -> None:
    text = text_table(pivot(_table(), "fast", "slow", "sharpe"))
    assert text.splitlines()[0] == "| fast \\ slow | 20 | 21 | 22 | 23 |"
    assert len(text.splitlines()) == 2 + 3


def test_the_html_file_holds_the_table_and_the_heatmap(tmp_path: Path) -> None:
    table = _table().assign(rank=np.arange(1, 25))
    png = heatmap_png(pivot(table, "fast", "slow", "sharpe"), "sharpe")
    assert png.startswith(b"\x89PNG")
    path = write_report(tmp_path / "s" / "x.html", title="Sweep <x>", sweep={"grid": "a&b"},
                        table=table, columns=["rank", "fast", "slow", "sharpe"],
                        heatmap_png=png)
    html = path.read_text()
    assert "Sweep &lt;x&gt;" in html and "a&amp;b" in html
    assert html.count("<tr>") == 1 + 24 and "data:image/png;base64," in html


def test_a_grid_too_large_for_a_png_falls_back_to_text_under_the_limit() -> None:
    rng = np.random.default_rng(1)
    grid = pd.DataFrame(rng.normal(size=(60, 60)), index=pd.Index(range(60), name="fast"),
                        columns=pd.Index(range(60), name="slow"))
    markdown = inline_markdown(grid, "sharpe")
    assert len(markdown) < INLINE_LIMIT and not markdown.startswith("![")

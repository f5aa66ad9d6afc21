"""What ``rank_sweep`` shows: the ranked table of the stored rows as markdown metadata and, for
two swept parameters, a heatmap (inline, and in an HTML file linked from the metadata)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import MetadataValue, Output

from btpipeline.settings import btpipeline_home
from btpipeline.sweeps.heatmap import heatmap_png, inline_markdown, pivot
from btpipeline.sweeps.ranking import markdown_top, rank_results
from btpipeline.sweeps.report import write_report
from btpipeline.sweeps.spec import METRICS


@dataclass(frozen=True)
class Ranking:
    """What ``rank_sweep`` needs from the plan besides the stored rows."""

    sweep_id: str
    rank_by: str
    top_n: int
    grid_fields: tuple[str, ...]
    strategy: str
    epic: str
    report_dir: str


def stored_rows(stored: pd.DataFrame, grid_fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """``sweep_results`` rows as result rows: key, grid values, metrics, fills, compute_ms."""
    rows = []
    for row in stored.to_dict("records"):
        params = row["params"]
        rows.append({"index": int(row["combination"]), "combination": row["combination_key"],
                     **{field: params[field] for field in grid_fields},
                     **{metric: row[metric] for metric in METRICS},
                     "fills": int(row["fills"]), "compute_ms": float(row["compute_ms"])})
    return rows


def _best(table: pd.DataFrame) -> dict[str, Any]:
    """The best row as JSON-safe values (infinite or missing profit factors become null)."""
    return json.loads(table.head(1).to_json(orient="records"))[0]


def _report_path(ranking: Ranking) -> Path:
    folder = Path(ranking.report_dir) if ranking.report_dir else btpipeline_home() / "sweeps"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in ranking.sweep_id)
    return folder / f"{safe}.html"


def ranked_output(stored: pd.DataFrame, ranking: Ranking,
                  sweep: dict[str, Any]) -> Output[pd.DataFrame]:
    """The ranked table as the op's output, with its metadata (and the HTML file written)."""
    table = rank_results(stored_rows(stored, ranking.grid_fields), ranking.rank_by)
    top = markdown_top(table, ranking.grid_fields, ranking.top_n)
    metadata: dict[str, Any] = {
        "sweep_id": MetadataValue.text(ranking.sweep_id),
        "top": MetadataValue.md(top),
        "best": MetadataValue.json(_best(table)),
        "combinations": MetadataValue.int(len(table)),
        "rank_by": MetadataValue.text(ranking.rank_by),
        "compute_ms_total": MetadataValue.float(float(table["compute_ms"].sum())),
    }
    big_png = None
    if len(ranking.grid_fields) == 2:
        grid = pivot(table, *ranking.grid_fields, ranking.rank_by)
        metadata["heatmap"] = MetadataValue.md(inline_markdown(grid, ranking.rank_by))
        big_png = heatmap_png(grid, ranking.rank_by)
    columns = ["rank", *ranking.grid_fields, *METRICS, "fills"]
    path = write_report(_report_path(ranking),
                        title=f"Sweep {ranking.sweep_id}: {ranking.strategy} on {ranking.epic}",
                        sweep={k: v for k, v in sweep.items() if k != "sweep_id"},
                        table=table, columns=columns, heatmap_png=big_png)
    metadata["report"] = MetadataValue.path(str(path))
    return Output(table, metadata=metadata)

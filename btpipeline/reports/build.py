"""One call for the CLI and the ``report/<strategy>`` asset: gather, write the HTML, return both."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from btpipeline.reports.data import (
    DEFAULT_CAPITAL,
    ResultsReader,
    VariantReportData,
    gather_report_data,
)
from btpipeline.reports.html import write_html
from btpipeline.settings import btpipeline_home


def default_report_path(strategy: str) -> Path:
    """``<BTPIPELINE_HOME>/reports/<strategy>.html``."""
    return btpipeline_home() / "reports" / f"{strategy}.html"


def write_variant_report(reader: ResultsReader, strategy: str, instruments: Sequence[str], *,
                         capital: float = DEFAULT_CAPITAL, path: Path | None = None,
                         source: str = "") -> tuple[VariantReportData, Path]:
    """Gather ``strategy``'s stored results and write its HTML report to ``path`` (default
    ``default_report_path``); return the data (for the markdown view) and the file."""
    data = gather_report_data(reader, strategy, instruments, capital=capital, source=source)
    return data, write_html(data, path or default_report_path(strategy))

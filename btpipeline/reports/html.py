"""One self-contained HTML report per strategy variant.

Inline CSS, PNG charts as base64 data URIs and a few lines of vanilla JS to sort the trade
table: the file makes no request of its own and opens from disk, a mail attachment or a CI
artifact alike. Wide tables sit in scrolling containers (max-width 100%), so the page itself
never scrolls sideways at 1,600 px.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

import pandas as pd

from btpipeline.folders import make_dirs
from btpipeline.reports import charts, formatting
from btpipeline.reports.data import PORTFOLIO, VariantReportData
from btpipeline.reports.drawdowns import drawdown_periods

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1520px;margin:0 auto;padding:16px 24px;box-sizing:border-box}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:24px 0 8px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:12px 16px;
margin-bottom:16px;box-sizing:border-box;max-width:100%}
img{display:block;max-width:100%;height:auto}
.scroll{max-width:100%;overflow-x:auto}.tall{max-height:640px;overflow-y:auto}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid #e8ebef;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
th{background:#f0f2f5;position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
.neg{color:#b42318}.pos{color:#067647}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
"""

SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, index) {
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.from(body.rows);
      function key(row) { var v = row.cells[index].dataset.sort; var n = parseFloat(v);
        return v !== "" && !isNaN(n) && isFinite(v) ? n : v; }
      rows.sort(function (a, b) { var x = key(a), y = key(b);
        var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
                                        : (typeof x === "number" ? -1 : 1);
        return ascending ? c : -c; });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _cell(text: str, sort: str | None = None, sign: float | None = None) -> str:
    attrs = "" if sort is None else f' data-sort="{escape(sort)}"'
    if sign is not None and sign == sign and sign != 0:
        attrs += ' class="neg"' if sign < 0 else ' class="pos"'
    return f"<td{attrs}>{escape(text)}</td>"


def _table(headers: Sequence[str], rows: Iterable[str], css: str = "", wrap: str = "scroll",
           table_id: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    ident = f' id="{table_id}"' if table_id else ""
    return (f'<div class="{wrap}"><table class="{css}"{ident}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _metrics_section(data: VariantReportData) -> str:
    columns = list(data.metrics.columns)
    rows = ("<tr>" + _cell(name) + "".join(
        _cell(formatting.metric(c, row[c]), sign=row[c] if c == "total_return" else None)
        for c in columns) + "</tr>" for name, row in data.metrics.iterrows())
    headers = ["instrument", *(formatting.METRIC_LABELS.get(c, c) for c in columns)]
    return "<h2>Metrics per instrument</h2>" + _table(headers, rows)


def _monthly_section(data: VariantReportData, heatmap: bytes) -> str:
    table = data.monthly_returns
    rows = ("<tr>" + _cell(month) + "".join(
        _cell(f"{v:.2%}", sign=v) for v in row.to_numpy()) + "</tr>"
        for month, row in table.iterrows())
    return ("<h2>Monthly returns</h2>"
            f'<img alt="monthly returns heatmap" src="{data_uri(heatmap)}">'
            + _table(["month", *table.columns], rows))


def _iso(values: pd.Series) -> list[str]:
    return ["" if pd.isna(t) else t.isoformat() for t in values]


def _nums(values: pd.Series) -> list[str]:
    return ["" if v != v else repr(float(v)) for v in values]


def _z(*columns: Iterable) -> Iterable[tuple]:
    return zip(*columns, strict=True)


def _trade_rows(trades: pd.DataFrame) -> list[str]:
    """One <tr> per trade; each cell's data-sort holds the raw value the sorter compares."""
    seconds = trades["duration"].dt.total_seconds()
    columns = [
        _z(trades["instrument"], trades["instrument"]),
        _z(map(formatting.timestamp, trades["entry_time"]), _iso(trades["entry_time"])),
        _z(map(formatting.timestamp, trades["exit_time"]), _iso(trades["exit_time"])),
        _z(trades["side"], trades["side"]),
        _z(map(formatting.price, trades["entry_price"]), _nums(trades["entry_price"])),
        _z(map(formatting.price, trades["exit_price"]), _nums(trades["exit_price"])),
        _z((f"{v:,.0f}" for v in trades["size"]), _nums(trades["size"])),
        _z(map(formatting.money, trades["pnl"]), _nums(trades["pnl"]), trades["pnl"]),
        _z(map(formatting.duration, trades["duration"]), _nums(seconds)),
    ]
    return ["<tr>" + "".join(_cell(*cell) for cell in row) + "</tr>" for row in _z(*columns)]


def _trades_section(data: VariantReportData) -> str:
    headers = ["instrument", "entry (UTC)", "exit (UTC)", "side", "entry price", "exit price",
               "size", "P&L", "duration"]
    rows = _trade_rows(data.trades)
    return (f"<h2>Trades ({len(data.trades):,}; click a header to sort)</h2>"
            + _table(headers, rows, css="sortable", wrap="scroll tall", table_id="trades"))


def _drawdowns_section(data: VariantReportData) -> str:
    periods = drawdown_periods(data.drawdown[PORTFOLIO])
    rows = ("<tr>" + _cell(f"{p.depth:.2%}", sign=p.depth) + _cell(formatting.day(p.start))
            + _cell(formatting.day(p.valley)) + _cell(formatting.day(p.end, "not recovered"))
            + _cell(str(p.days)) + "</tr>" for p in periods.itertuples())
    headers = ["depth", "start (peak)", "valley", "recovered", "days"]
    return ("<h2>Worst drawdown periods (portfolio)</h2>"
            + _table(headers, rows, table_id="drawdowns"))


def _settings_section(data: VariantReportData) -> str:
    params = sorted({k for p in data.params.values() for k in p})
    costs = sorted({k for c in data.costs.values() for k in c})
    rows = ("<tr>" + _cell(epic) + "".join(
        _cell(str(data.params[epic].get(k, ""))) for k in params) + "".join(
        _cell(str(data.costs[epic].get(k, ""))) for k in costs) + "</tr>"
        for epic in data.instruments)
    note = ("<p>Costs: those stored with the run, else the pair's catalogue spread; "
            "commission per 100,000 units per side, in the quote currency.</p>")
    return "<h2>Parameters and costs</h2>" + _table(["instrument", *params, *costs], rows) + note


def _range_section(data: VariantReportData) -> str:
    rows = ("<tr>" + _cell(epic) + _cell(r.first_day) + _cell(r.last_day)
            + _cell(f"{r.first_month}..{r.last_month}") + _cell(str(r.months))
            + _cell(str(r.days)) + "</tr>" for epic, r in data.data_range.items())
    headers = ["instrument", "first day", "last day", "partitions", "months", "days"]
    return "<h2>Data range</h2>" + _table(headers, rows)


def _summary(data: VariantReportData) -> str:
    first = min(r.first_day for r in data.data_range.values())
    last = max(r.last_day for r in data.data_range.values())
    items = {"capital": f"{data.capital:,.0f} {data.currency}",
             "instruments": ", ".join(data.instruments), "timeframe": f"{data.timeframe} bars",
             "data range": f"{first} .. {last}", "source": data.source or "results database",
             "portfolio": "one account trading every instrument at once (sum of daily P&L)"}
    items.update({f"note {i}": note for i, note in enumerate(data.notes, 1)})
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>"
                            for k, v in items.items()) + "</dl>"


def render_html(data: VariantReportData, equity_png: bytes | None = None,
                heatmap_png: bytes | None = None) -> str:
    """The whole report as one HTML document (charts drawn here unless passed in)."""
    title = f"btpipeline report: {escape(data.strategy)}"
    if data.empty:
        body = f"<p>No stored results for {escape(data.strategy)} yet: run its backtests first.</p>"
    else:
        equity_png = equity_png or charts.equity_drawdown_png(data)
        heatmap_png = heatmap_png or charts.monthly_heatmap_png(data)
        body = "".join(f"<section>{part}</section>" for part in (
            _summary(data),
            f'<h2>Equity and drawdown</h2><img alt="equity and drawdown" '
            f'src="{data_uri(equity_png)}">',
            _drawdowns_section(data), _metrics_section(data),
            _monthly_section(data, heatmap_png),
            _settings_section(data), _range_section(data), _trades_section(data)))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}</title><style>{STYLE}</style></head>"
            f"<body><main><h1>{title}</h1>{body}</main><script>{SORT_SCRIPT}</script>"
            f"</body></html>")


def write_html(data: VariantReportData, path: Path) -> Path:
    """Write the report to ``path`` (parent folders created) and return it."""
    make_dirs(path.parent)
    path.write_text(render_html(data), encoding="utf-8")
    return path

"""The ops of ``sweep_job`` (see jobs.py) and their run config.

* ``plan_sweep`` validates the whole configuration (strategy, epic, dates, grid, rules, costs,
  ranking) and that candles exist, stores the sweep in the results database (replacing a
  sweep with the same id), then emits one ``DynamicOutput`` per *chunk* of combinations:
  ``chunks`` of them (default: the executor's worker count), more when a chunk would exceed
  ``max_per_chunk``. A bad grid or rule fails here, once, before any chunk starts.
* ``backtest_chunk`` (one step per chunk) reads the candles once, computes each distinct
  indicator series once and runs every combination with the sweep kernel
  (``btpipeline.sweeps.chunks``), then writes the chunk's rows to the results database in one
  transaction that replaces any rows of the same combinations: a retried chunk is stored
  exactly once. Like the backtest assets the steps claim slots of the ``backtests`` pool and
  share their retry policy, so the machine-wide limit, the circuit breaker and the fast path
  throttle a sweep too.
* ``rank_sweep`` reads the stored rows of the sweep, ranks them and returns the table; the
  top rows are markdown output metadata, and for two swept parameters a heatmap (inline and
  in an HTML file linked from the metadata).

All configuration sits on ``plan_sweep`` (see ``SweepConfig``), so a launchpad or ``-c`` file
needs one ``ops: {plan_sweep: {config: ...}}`` block (``examples/sweep.yaml``).
"""

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dagster import (
    Config,
    DynamicOut,
    DynamicOutput,
    OpExecutionContext,
    Out,
    Output,
    op,
)
from pydantic import Field

from btpipeline.assets.backtests.assets import BACKTEST_RETRY_POLICY
from btpipeline.assets.failures import step_failure
from btpipeline.assets.sweeps.output import Ranking, ranked_output
from btpipeline.assets.sweeps.step_io import SWEEP_IO
from btpipeline.errors import BtPipelineError
from btpipeline.machine.cores import worker_count
from btpipeline.machine.executor_settings import ExecutorSettings
from btpipeline.machine.tags import BACKTEST_POOL
from btpipeline.resources.market_data_store import MarketDataStore
from btpipeline.resources.results_database import ResultsDatabase
from btpipeline.sweeps.chunks import SweepChunk, chunk_count, run_chunk, split_chunks
from btpipeline.sweeps.spec import SweepSpec, build_spec


class SweepConfig(Config):
    """Run config of ``plan_sweep``: what to sweep, over which data, at what cost."""

    strategy: str = Field(default="macd_crossover",
                          description="Strategy: a built-in name (macd_crossover, "
                          "ema_crossover, ...) or a user strategy as module:Class.")
    epic: str = Field(default="EURUSD", description="Currency pair, e.g. EURUSD.")
    start_date: str = Field(description="First UTC day of the backtest, YYYY-MM-DD.")
    end_date: str = Field(description="Last UTC day of the backtest (inclusive), YYYY-MM-DD.")
    grid: dict[str, list[float]] = Field(
        description="Values per strategy parameter; every combination is backtested, e.g. "
        "{fast: [8, 12], slow: [21, 26], signal: [9]}. Unlisted parameters keep defaults.")
    rules: list[str] = Field(
        default_factory=list, description="Constraints between parameters, e.g. "
        "['fast < slow']: '<parameter> <op> <parameter or number>', op one of < <= > >= != ==. "
        "Combinations breaking a rule are dropped (and counted) before validation.")
    skip_invalid: bool = Field(
        default=False, description="Drop combinations the strategy rejects (e.g. fast >= "
        "slow) instead of failing the run. Prefer a rule, which says what is dropped.")
    sweep_id: str = Field(
        default="", description="Id of the sweep in the results database; empty: the run id. "
        "A run with the id of a stored sweep replaces its rows.")
    chunks: int = Field(
        default=0, ge=0, description="Steps to split the grid into; 0: one per backtest "
        "worker of the executor (more when a chunk would exceed max_per_chunk).")
    max_per_chunk: int = Field(
        default=500, ge=1, description="Most combinations in one step (a retry repeats at "
        "most that much work).")
    spread_pips: float | None = Field(
        default=None, description="Spread in pips; unset uses the epic's catalogue spread.")
    commission_per_lot: float = Field(
        default=0.0, description="Commission per 100,000 units per side, in quote currency.")
    slippage_pips: float = Field(default=0.0, description="Adverse slippage per fill, in pips.")
    size_units: float = Field(default=100_000, description="Fixed position size, base units.")
    initial_capital: float = Field(
        default=100_000, description="Account equity (USD) each combination starts with; "
        "returns and drawdown are on it, and trading stops if it is lost.")
    rank_by: str = Field(default="sharpe", description="Metric to rank by (max_drawdown ranks "
                         "lowest first): total_return, sharpe, sortino, max_drawdown, win_rate, "
                         "profit_factor, expectancy, num_trades, exposure.")
    top_n: int = Field(default=10, description="Rows of the markdown table of the best results.")
    report_dir: str = Field(
        default="", description="Folder of the sweep's HTML file; empty: <BTPIPELINE_HOME>/"
        "sweeps.")


@dataclass(frozen=True)
class ChunkJob:
    """One chunk of one sweep: what a ``backtest_chunk`` step receives."""

    sweep_id: str
    chunk: SweepChunk
    total_chunks: int


def _spec(config: SweepConfig) -> SweepSpec:
    costs = {"spread_pips": config.spread_pips, "commission_per_lot": config.commission_per_lot,
             "slippage_pips": config.slippage_pips}
    return build_spec(strategy=config.strategy, epic=config.epic, start_date=config.start_date,
                      end_date=config.end_date, grid=config.grid, costs=costs,
                      size_units=config.size_units, initial_capital=config.initial_capital,
                      rank_by=config.rank_by, top_n=config.top_n,
                      skip_invalid=config.skip_invalid, rules=config.rules)


def _costs(config: SweepConfig) -> dict[str, Any]:
    """What the ``sweeps`` row records as the costs: the cost model and the sizing."""
    return {"spread_pips": config.spread_pips, "commission_per_lot": config.commission_per_lot,
            "slippage_pips": config.slippage_pips, "size_units": config.size_units,
            "initial_capital": config.initial_capital}


def _check_data(spec: SweepSpec, market_data: MarketDataStore) -> int:
    """Read the range once with the longest warm-up: missing candles fail before the fan-out
    (with the store's message naming the `btpipeline generate`/`import` command)."""
    task = spec.tasks[0]
    candles = market_data.read_range(epic=task.epic, start_ns=task.start_ns, end_ns=task.end_ns,
                                     warmup_bars=spec.max_warmup_bars)
    return len(candles)


def executor_workers(run_config: Mapping[str, Any]) -> int:
    """The backtest workers this run's executor starts (its ``max_concurrent_backtests``,
    else one per core backtests may use), from the run config's ``execution`` block."""
    execution: Any = (run_config.get("execution") or {})
    execution = execution.get("config") or {}
    settings = ExecutorSettings(**{k: v for k, v in execution.items()
                                   if k in ExecutorSettings.model_fields})
    return worker_count(settings, sorted(os.sched_getaffinity(0)))


def _store_sweep(config: SweepConfig, spec: SweepSpec, sweep_id: str, run_id: str,
                 results_db: ResultsDatabase) -> None:
    first = spec.tasks[0]
    results_db.start_sweep(sweep_id=sweep_id, strategy=first.strategy, epic=first.epic,
                           range_start=config.start_date, range_end=config.end_date,
                           costs=_costs(config), grid=config.grid, rules=config.rules,
                           rank_by=config.rank_by, combinations=len(spec.tasks), run_id=run_id)


@op(out={"chunks": DynamicOut(ChunkJob, io_manager_key=SWEEP_IO),
         "ranking": Out(Ranking, io_manager_key=SWEEP_IO)},
    description="Validate the sweep config, store the sweep and emit one output per chunk of "
    "grid combinations.")
def plan_sweep(context: OpExecutionContext, config: SweepConfig, market_data: MarketDataStore,
               results_db: ResultsDatabase) -> Iterator[Output | DynamicOutput]:
    try:
        spec = _spec(config)
        bars = _check_data(spec, market_data)
        workers = config.chunks or executor_workers(context.run_config)
        count = chunk_count(len(spec.tasks), workers=workers, max_per_chunk=config.max_per_chunk)
        sweep_id = config.sweep_id or context.run_id
        _store_sweep(config, spec, sweep_id, context.run_id, results_db)
    except BtPipelineError as error:
        raise step_failure(error) from error
    first = spec.tasks[0]
    if spec.rules:
        context.log.info(f"Rules {list(spec.rules)} dropped {spec.dropped_by_rules} "
                         "combinations of the grid before validation.")
    chunks = split_chunks(spec.tasks, count)
    context.log.info(f"Sweep {sweep_id!r} of {first.strategy} on {first.epic}: "
                     f"{len(spec.tasks)} combinations of {', '.join(spec.grid_fields)} over "
                     f"{bars} bars (with warm-up) in {len(chunks)} chunks, ranked by "
                     f"{spec.rank_by}.")
    yield Output(Ranking(sweep_id=sweep_id, rank_by=spec.rank_by, top_n=spec.top_n,
                         grid_fields=spec.grid_fields, strategy=first.strategy,
                         epic=first.epic, report_dir=config.report_dir),
                 output_name="ranking",
                 metadata={"sweep_id": sweep_id, "combinations": len(spec.tasks),
                           "chunks": len(chunks), "dropped_by_rules": spec.dropped_by_rules})
    for chunk in chunks:
        yield DynamicOutput(ChunkJob(sweep_id, chunk, len(chunks)),
                            mapping_key=chunk.mapping_key, output_name="chunks")


@op(pool=BACKTEST_POOL, retry_policy=BACKTEST_RETRY_POLICY, out=Out(io_manager_key=SWEEP_IO),
    description="Backtest one chunk of grid combinations (shared candles and indicators) and "
    "store its rows in the results database.")
def backtest_chunk(context: OpExecutionContext, job: ChunkJob, market_data: MarketDataStore,
                   results_db: ResultsDatabase) -> Output[dict[str, Any]]:
    chunk = job.chunk
    context.log.info(f"Chunk {chunk.index + 1}/{job.total_chunks} of sweep {job.sweep_id!r}: "
                     f"{len(chunk.tasks)} combinations ({chunk.mapping_key}), attempt "
                     f"{context.retry_number + 1}.")
    try:
        rows, figures = run_chunk(chunk, market_data)
        stored = [{**row, "index": task.combination.index, "params": task.params}
                  for task, row in zip(chunk.tasks, rows, strict=True)]
        results_db.write_sweep_chunk(sweep_id=job.sweep_id, chunk=chunk.index,
                                     run_id=context.run_id, rows=stored)
    except BtPipelineError as error:
        _fail_sweep_on_last_attempt(context, job, results_db, error)
        raise step_failure(error) from error
    except Exception as error:
        _fail_sweep_on_last_attempt(context, job, results_db, error)
        raise
    summary = _chunk_summary(job, rows, figures)
    context.log.info(f"Chunk {chunk.index + 1}/{job.total_chunks} stored: "
                     f"{summary['combinations']} combinations, compute "
                     f"{summary['compute_ms']:.0f} ms, peak RSS {summary['rss_mb']:.0f} MB.")
    return Output(summary, metadata=summary)


def is_last_attempt(retry_number: int, run_config: Mapping[str, Any]) -> bool:
    """Whether a failure of attempt ``retry_number`` (0 = first) is the chunk's last: retries
    disabled in the run's executor config (or ``BTPIPELINE_RETRIES``), or the retry policy's
    attempts used up."""
    execution: Any = (run_config.get("execution") or {})
    settings = ExecutorSettings.from_env(execution.get("config") or {})
    max_retries = BACKTEST_RETRY_POLICY.max_retries if settings.retries == "enabled" else 0
    return retry_number >= max_retries


def _fail_sweep_on_last_attempt(context: OpExecutionContext, job: ChunkJob,
                                results_db: ResultsDatabase, error: Exception) -> None:
    """A chunk that fails for good ends its sweep: the ``sweeps`` row turns FAILED with the
    error (rank_sweep, which would mark it SUCCESS, never runs). Earlier attempts leave it
    RUNNING for the retry. A failure to record this must not hide the chunk's own error."""
    if not is_last_attempt(context.retry_number, context.run_config):
        return
    message = (f"chunk {job.chunk.index + 1}/{job.total_chunks} ({job.chunk.mapping_key}) "
               f"failed after {context.retry_number + 1} attempt(s): "
               f"{type(error).__name__}: {error}")
    try:
        results_db.finish_sweep(sweep_id=job.sweep_id, status="FAILED", error=message[:4000])
    except Exception as recording:  # noqa: BLE001 - the chunk's error is what the step reports
        context.log.warning(f"Could not mark sweep {job.sweep_id!r} FAILED: {recording}")


def _chunk_summary(job: ChunkJob, rows: list[dict[str, Any]],
                   figures: dict[str, Any]) -> dict[str, Any]:
    import psutil

    info = psutil.Process().memory_info()
    return {"chunk": job.chunk.index, "combinations": len(rows),
            "first": job.chunk.tasks[0].mapping_key, "last": job.chunk.tasks[-1].mapping_key,
            "compute_ms": float(sum(r["compute_ms"] for r in rows)),
            "read_ms": float(figures["read_ms"]), "cache_hits": int(figures["cache_hits"]),
            "cache_misses": int(figures["cache_misses"]), "rss_mb": info.rss / 2**20}


@op(out=Out(io_manager_key=SWEEP_IO),
    description="Rank the sweep's stored combinations; the best as a markdown table, a "
    "heatmap for two swept parameters, and an HTML file.")
def rank_sweep(context: OpExecutionContext, chunks: list[dict[str, Any]], ranking: Ranking,
               results_db: ResultsDatabase) -> Output:
    stored = results_db.read_sweep_results(ranking.sweep_id)
    output = ranked_output(stored, ranking, results_db.read_sweep(ranking.sweep_id) or {})
    results_db.finish_sweep(sweep_id=ranking.sweep_id, status="SUCCESS")
    context.log.info(f"{ranking.strategy} on {ranking.epic}, {len(stored)} combinations from "
                     f"{len(chunks)} chunks, best by {ranking.rank_by}:\n"
                     f"{output.metadata['top'].value}")
    return output

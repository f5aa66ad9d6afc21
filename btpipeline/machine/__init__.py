"""The neutral machine layer: what the executor, the scanner, the client and the sensors share.

Nothing here imports Dagster, the executor, the assets or the resources (pinned by
``tests/unit/test_no_dagster_imports.py``), so the live scanner and the client can use it without
loading Dagster. Modules, each imported by its full path (this package re-exports nothing):

* ``priority``: :class:`JobPriority`, :class:`SchedPolicy`, priority tags;
* ``tags``: every tag name btpipeline reads, and ``BACKTEST_POOL``;
* ``cores``: :class:`ExecutionMode` and the core split between backtests and the scanner;
* ``isolation``: nice, scheduling class, affinity, autogroup, :class:`IsolationSpec`;
* ``heartbeat``: the scanner's status file;
* ``pause_points``: critical sections a worker is never SIGSTOPped inside;
* ``queue_caps``, ``deadlines``: the run-queue policy's pure rules;
* ``naming``: asset key paths and month partition keys, as plain strings;
* ``settings``: the settings-model base (typed ``BTPIPELINE_*`` overrides) and ``PathSettings``;
* ``executor_settings``: ``ExecutorSettings``, every backtest_executor setting declared once;
* ``protection``, ``protection_state``: the one protection policy (levels, mode scaling, the
  CLOSED/OPEN/HALF_OPEN machine and its published state) that the breaker and the fast path share.
"""

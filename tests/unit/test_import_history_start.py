"""CSV import against the universe: bars before history_start are refused (nothing stored),
and a file whose time column is unnamed or named otherwise gets a fix that works."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from btpipeline import cli
from btpipeline.data.store import CandleStore, import_csv_into_store
from btpipeline.errors import DataValidationError

ROWS = ("2024-01-02T22:00:00Z,1.1,1.2,1.0,1.1\n"
        "2024-02-01T00:00:00Z,1.1,1.2,1.0,1.15\n")


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.delenv("BTPIPELINE_UNIVERSE", raising=False)
    return tmp_path


def _csv(tmp_path: Path, header: str) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text(header + "\n" + ROWS)
    return path


def _stored(data: Path) -> list[str]:
    return sorted(p.relative_to(data).as_posix() for p in data.rglob("*.arrow"))


def test_bars_before_history_start_are_refused_and_nothing_is_stored(env) -> None:
    store = CandleStore(env / "data")
    path = _csv(env, "timestamp,open,high,low,close")
    with pytest.raises(DataValidationError) as info:
        import_csv_into_store(store, path, "EURUSD", history_start=dt.date(2024, 2, 1))
    message = str(info.value)
    assert str(path) in message and "1 bar(s) from 2024-01-02" in message
    assert "history_start 2024-02-01" in message
    assert "Fix: set `history_start: 2024-01-01` in the universe file" in message
    assert _stored(env / "data") == []
    import_csv_into_store(store, path, "EURUSD", history_start=dt.date(2024, 1, 1))
    assert _stored(env / "data") == ["EURUSD/2024-01.arrow", "EURUSD/2024-02.arrow"]


def test_the_cli_takes_history_start_from_the_universe_file(env, monkeypatch, capsys) -> None:
    universe = env / "u.yaml"
    universe.write_text((Path(__file__).resolve().parents[2] / "universe.yaml").read_text()
                        .replace("history_start: 2020-01-01", "history_start: 2024-02-01"))
    monkeypatch.setenv("BTPIPELINE_UNIVERSE", str(universe))
    path = _csv(env, "timestamp,open,high,low,close")
    argv = ["import", str(path), "--epic", "EURUSD", "--data-dir", str(env / "data")]
    assert cli.main(argv) == 2
    assert "history_start 2024-02-01" in capsys.readouterr().err
    assert _stored(env / "data") == []
    universe.write_text(universe.read_text().replace("2024-02-01", "1999-01-01"))
    assert cli.main(argv) == 0


def test_a_differently_named_time_column_is_fixed_with_the_option_it_suggests(env,
                                                                               capsys) -> None:
    path = _csv(env, "Date,open,high,low,close")
    argv = ["import", str(path), "--epic", "EURUSD", "--data-dir", str(env / "data")]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert "found ['Date', 'open', 'high', 'low', 'close']" in error
    suggested = "--timestamp-column Date"
    assert f"`btpipeline import FILE --epic EPIC {suggested}`" in error
    assert cli.main([*argv, *suggested.split()]) == 0
    assert _stored(env / "data") == ["EURUSD/2024-01.arrow", "EURUSD/2024-02.arrow"]


def test_an_unnamed_time_column_is_fixed_by_the_header_it_suggests(env, capsys) -> None:
    path = _csv(env, ",open,high,low,close")
    argv = ["import", str(path), "--epic", "EURUSD", "--data-dir", str(env / "data")]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert "the time column has no name: write 'timestamp' as its header" in error
    path.write_text("timestamp,open,high,low,close\n" + ROWS)
    assert cli.main(argv) == 0

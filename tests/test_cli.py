"""The `lstmkit forecast` command on CSV files."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli import main

FAST = ["--epochs", "3", "--ensemble", "1"]


@pytest.fixture
def csv_path(tmp_path):
    n = 60
    t = np.arange(n)
    frame = pd.DataFrame(
        {
            "month": pd.date_range("2015-01-01", periods=n, freq="MS").strftime("%Y-%m-%d"),
            "sales": 100 + t + 10 * np.sin(2 * np.pi * t / 12),
            "visits": 50 + np.cos(t),
        }
    )
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def test_forecast_prints_the_table_and_writes_csv_and_plot(csv_path, tmp_path, capsys):
    out, png = tmp_path / "out.csv", tmp_path / "out.png"
    args = ["forecast", str(csv_path), "--target", "sales", "--date-col", "month", "--horizon", "4"]
    rc = main(
        [*args, "--quantiles", "0.1,0.5,0.9", "--output", str(out), "--plot", str(png), *FAST]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "sales_q0.1" in printed and "2020-01-01" in printed and "2020-04-01" in printed
    table = pd.read_csv(out, index_col=0, parse_dates=True)
    assert list(table.columns) == ["sales", "sales_q0.1", "sales_q0.5", "sales_q0.9"]
    assert len(table) == 4 and str(table.index[0].date()) == "2020-01-01"
    assert (table["sales_q0.1"] <= table["sales_q0.9"]).all()
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_covariates_baselines_and_save(csv_path, tmp_path, capsys):
    base = ["forecast", str(csv_path), "--target", "sales", "--date-col", "month", "--horizon", "3"]
    saved = tmp_path / "f.lstmkit"
    assert main([*base, "--covariates", "visits", "--save", str(saved), *FAST]) == 0
    assert saved.exists()
    assert main([*base, "--save", str(saved), *FAST]) == 2  # no overwrite without --overwrite
    assert "overwrite" in capsys.readouterr().err
    assert main([*base, "--model", "seasonal_naive"]) == 0
    table = capsys.readouterr().out
    assert "2020-03-01" in table


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "revenue"], "unknown column(s) ['revenue']; available columns are"),
        (["--target", "sales", "--date-col", "day"], "--date-col: unknown column 'day'"),
        (
            ["--target", "sales", "--horizon", "50", "--lookback", "24"],
            "series has 60 observations",
        ),
    ],
)
def test_bad_input_gives_a_clear_message_and_status_2(csv_path, capsys, extra, message):
    args = ["forecast", str(csv_path), *extra]
    if "--date-col" not in extra:
        args += ["--date-col", "month"]
    assert main([*args, *FAST]) == 2
    assert message in capsys.readouterr().err


def test_nan_and_missing_file(csv_path, tmp_path, capsys):
    frame = pd.read_csv(csv_path)
    frame.loc[7, "sales"] = np.nan
    broken = tmp_path / "broken.csv"
    frame.to_csv(broken, index=False)
    assert main(["forecast", str(broken), "--target", "sales", "--date-col", "month"]) == 2
    assert "position 7 (2015-08-01" in capsys.readouterr().err
    assert main(["forecast", str(tmp_path / "none.csv"), "--target", "sales"]) == 2


def test_runs_as_a_module(csv_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "lstmkit.cli",
            "forecast",
            str(csv_path),
            "--target",
            "sales",
            "--date-col",
            "month",
            "--horizon",
            "2",
            "--model",
            "naive",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "sales_q0.9" in run.stdout

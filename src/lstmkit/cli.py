"""Command line: ``lstmkit forecast data.csv --target COL --horizon 12``.

Reads a CSV, fits a `lstmkit.forecasting.Forecaster` (or a baseline with ``--model``) on the
target column(s), prints the forecast table, and optionally writes it as CSV (``--output``),
plots it (``--plot``) and saves the fitted forecaster (``--save``). Bad input (a missing file,
an unknown column, NaNs, unordered dates, a series too short) is reported on stderr with exit
status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pandas as pd

MODELS = ("lstm", "naive", "seasonal_naive", "sarima", "ets")


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0.1,0.9; got {text!r}"
        ) from None


def _columns(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lstmkit", description="lstmkit command line tools")
    commands = parser.add_subparsers(dest="command", required=True)
    forecast = commands.add_parser(
        "forecast",
        help="fit a forecaster on a CSV column and print its forecast",
        description="Fit an LSTM forecaster (or a baseline) on a CSV and print the forecast.",
    )
    forecast.add_argument("csv", help="input CSV file, one row per time step")
    forecast.add_argument(
        "--target", required=True, type=_columns, help="target column(s), comma-separated"
    )
    forecast.add_argument("--horizon", type=int, default=12, help="steps to forecast (12)")
    forecast.add_argument("--date-col", help="column with the dates (parsed; becomes the index)")
    forecast.add_argument(
        "--covariates", type=_columns, default=[], help="past covariate column(s)"
    )
    forecast.add_argument("--lookback", type=int, help="input window length (default: auto)")
    forecast.add_argument(
        "--quantiles",
        type=_floats,
        default=[0.1, 0.9],
        help="quantile levels, comma-separated (default 0.1,0.9: an 80%% interval)",
    )
    forecast.add_argument("--model", choices=MODELS, default="lstm", help="forecaster (lstm)")
    forecast.add_argument("--epochs", type=int, default=300, help="training epochs (lstm)")
    forecast.add_argument("--ensemble", type=int, default=3, help="networks averaged (lstm)")
    forecast.add_argument("--seed", type=int, default=0, help="random seed (lstm)")
    forecast.add_argument("--output", help="write the forecast table to this CSV file")
    forecast.add_argument("--plot", help="write a PNG plot of the forecast to this file")
    forecast.add_argument("--save", help="save the fitted LSTM forecaster to this file")
    forecast.add_argument(
        "--overwrite", action="store_true", help="let --save replace an existing file"
    )
    return parser


def _read(args: argparse.Namespace) -> pd.DataFrame:
    frame = pd.read_csv(args.csv)
    if args.date_col is not None:
        if args.date_col not in frame.columns:
            raise ValueError(
                f"--date-col: unknown column {args.date_col!r}; "
                f"available columns are {list(frame.columns)}"
            )
        try:
            dates = pd.to_datetime(frame[args.date_col])
        except (ValueError, TypeError) as err:
            raise ValueError(f"--date-col {args.date_col!r} does not hold dates: {err}") from None
        frame = frame.drop(columns=args.date_col).set_index(pd.DatetimeIndex(dates))
    return frame


def _forecaster(args: argparse.Namespace):
    from lstmkit import forecasting

    quantiles = args.quantiles or None
    if args.model == "lstm":
        return forecasting.Forecaster(
            args.lookback,
            args.horizon,
            quantiles=quantiles,
            epochs=args.epochs,
            ensemble=args.ensemble,
            seed=args.seed,
        )
    if args.covariates:
        raise ValueError(f"--model {args.model} does not use --covariates")
    baselines = {
        "naive": forecasting.NaiveForecaster,
        "seasonal_naive": forecasting.SeasonalNaiveForecaster,
        "sarima": forecasting.SARIMAForecaster,
        "ets": forecasting.ETSForecaster,
    }
    return baselines[args.model](args.horizon, quantiles)


def forecast_command(args: argparse.Namespace) -> int:
    from lstmkit.forecasting.series import select_columns

    if args.save and args.model != "lstm":
        raise ValueError("--save works with --model lstm only")
    frame = _read(args)
    target = select_columns(frame, args.target, "--target")
    covariates = select_columns(frame, args.covariates, "--covariates") if args.covariates else None
    forecaster = _forecaster(args)
    forecaster.fit(target, covariates=covariates)
    table = forecaster.predict()
    with pd.option_context("display.max_rows", None, "display.width", 120):
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.output:
        table.to_csv(args.output, index_label=table.index.name or "time")
        print(f"forecast written to {args.output}", file=sys.stderr)
    if args.plot:
        forecaster.plot(args.plot, forecast=table, title=", ".join(args.target))
        print(f"plot written to {args.plot}", file=sys.stderr)
    if args.save:
        forecaster.save(args.save, overwrite=args.overwrite)
        print(f"forecaster saved to {args.save}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lstmkit`` script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return forecast_command(args)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as err:
        print(f"lstmkit {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

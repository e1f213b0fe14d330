"""Train the seed model on the CPU with lstmkit, TF-Keras, hand-written PyTorch and Keras on torch.

The seed model: LSTM(128) -> Dense(10, softmax), adam, categorical cross-entropy, accuracy;
N=2048 random sequences of T=100 steps and D=32 features, batch 64. Each contender runs in its
own process (the frameworks' thread pools would fight in one), in rounds that alternate the
contenders so that a change in the machine's load hits them alike. Prints seconds per epoch
(median over the timed epochs of all rounds; the first epoch of a process is warm-up: graph
building, XLA compilation), the ratio to TF-Keras (the median over rounds of the ratio within a
round, since a shared machine's speed drifts between rounds), predict() latency at batch 1
and 256, and one streaming step: a stateful copy of the model (batch 1) fed one time step per
``predict_on_batch`` (for PyTorch, one ``nn.LSTM`` call with the state carried by hand).

    python bench/fit_cpu.py              # creates .venv-bench with tensorflow-cpu on first use
    python bench/fit_cpu.py --skip-tf    # the torch-based contenders only
    python bench/fit_cpu.py --markdown bench/table.md   # also write the table as Markdown

Run it with the project's virtualenv (lstmkit, torch and keras installed). TF-Keras runs in
`.venv-bench`, a separate virtualenv with tensorflow-cpu, so that TensorFlow never becomes a
dependency of the package.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench"
N, T, D, CLASSES, UNITS, BATCH = 2048, 100, 32, 10, 128, 64
CONTENDERS = {
    "lstmkit": "lstmkit fp32",
    "lstmkit-bf16": "lstmkit bf16 autocast",
    "tf-keras": "TF-Keras",
    "torch": "PyTorch nn.LSTM, hand-written loop",
    "keras-torch": "Keras 3 on torch",
}
PREDICT_BATCHES = (1, 256)
STREAM_STEPS = 200  # timed single steps of a stateful copy of the model (batch 1, 1 step)


# -- data and timing, shared by every worker ----------------------------------------------------
def data():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, D)).astype("float32")
    y = np.eye(CLASSES, dtype="float32")[rng.integers(0, CLASSES, N)]
    return x, y


def latency_ms(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds, after two warm-up calls."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


# -- workers: one contender each, run in a subprocess, print one JSON line ----------------------
def run_lstmkit(epochs: int, bf16: bool) -> dict:
    import contextlib

    import torch

    from lstmkit.callbacks import Callback
    from lstmkit.layers import LSTM, Dense, Input
    from lstmkit.models import Sequential
    from lstmkit.utils import set_random_seed

    set_random_seed(0)
    x, y = data()
    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    )
    model = Sequential()
    model.add(LSTM(units=UNITS, input_shape=(T, D)))
    model.add(Dense(units=CLASSES, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"],
                  device="cpu")  # fmt: skip

    class EpochTimes(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    timer = EpochTimes()
    with autocast():
        history = model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[timer])
        predict = {
            bs: latency_ms(lambda bs=bs: model.predict(x[:bs], batch_size=bs, verbose=0), 20)
            for bs in PREDICT_BATCHES
        }
        streaming = Sequential([Input(batch_shape=(1, 1, D)), LSTM(UNITS, stateful=True),
                                Dense(CLASSES, activation="softmax")])  # fmt: skip
        streaming.set_weights(model.get_weights())
        step = latency_ms(lambda: streaming.predict_on_batch(x[:1, :1]), STREAM_STEPS)
    return {"epochs": timer.times, "predict": predict, "stream": step,
            "loss": history.history["loss"][-1]}  # fmt: skip


def run_torch(epochs: int) -> dict:
    import torch

    torch.manual_seed(0)
    x_np, y_np = data()
    x, labels = torch.from_numpy(x_np), torch.from_numpy(y_np.argmax(1))

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(D, UNITS, batch_first=True)
            self.dense = torch.nn.Linear(UNITS, CLASSES)

        def forward(self, x):
            return self.dense(self.lstm(x)[0][:, -1])  # logits; softmax is in the loss

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times, loss = [], None
    for _ in range(epochs):
        start = time.perf_counter()
        for idx in torch.randperm(N).split(BATCH):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x[idx]), labels[idx])
            loss.backward()
            opt.step()
        loss = float(loss)
        times.append(time.perf_counter() - start)

    @torch.no_grad()
    def predict(bs: int):
        return torch.softmax(model(x[:bs]), -1).numpy()

    pred = {bs: latency_ms(lambda bs=bs: predict(bs), 20) for bs in PREDICT_BATCHES}
    state = None

    @torch.no_grad()
    def stream_step():  # one step, the state carried by hand
        nonlocal state
        out, state = model.lstm(x[:1, :1], state)
        return torch.softmax(model.dense(out[:, -1]), -1).numpy()

    step = latency_ms(stream_step, STREAM_STEPS)
    return {"epochs": times, "predict": pred, "stream": step, "loss": loss}


def run_keras(epochs: int) -> dict:
    """Keras 3 on whatever backend KERAS_BACKEND names (tensorflow or torch)."""
    import keras

    keras.utils.set_random_seed(0)
    x, y = data()
    model = keras.Sequential([
        keras.Input((T, D)),
        keras.layers.LSTM(UNITS),
        keras.layers.Dense(CLASSES, activation="softmax"),
    ])  # fmt: skip
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    class EpochTimes(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    timer = EpochTimes()
    history = model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[timer])
    predict = {
        bs: latency_ms(lambda bs=bs: model.predict(x[:bs], batch_size=bs, verbose=0), 20)
        for bs in PREDICT_BATCHES
    }
    streaming = keras.Sequential([
        keras.Input(batch_shape=(1, 1, D)),
        keras.layers.LSTM(UNITS, stateful=True),
        keras.layers.Dense(CLASSES, activation="softmax"),
    ])  # fmt: skip
    streaming.set_weights(model.get_weights())
    step = latency_ms(lambda: streaming.predict_on_batch(x[:1, :1]), STREAM_STEPS)
    return {"epochs": timer.times, "predict": predict, "stream": step,
            "loss": history.history["loss"][-1]}  # fmt: skip


def worker(name: str, epochs: int) -> None:
    if name in ("lstmkit", "lstmkit-bf16"):
        result = run_lstmkit(epochs, bf16=name == "lstmkit-bf16")
    elif name == "torch":
        result = run_torch(epochs)
    else:
        result = run_keras(epochs)
    print("RESULT " + json.dumps(result), flush=True)


# -- the driver -----------------------------------------------------------------------------------
def bench_python(refresh: bool) -> Path:
    """The Python of .venv-bench, created (or refreshed) with tensorflow-cpu when needed."""
    python = BENCH_VENV / "bin" / "python"
    if python.exists() and not refresh:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        (BENCH_VENV / ".gitignore").write_text("*\n")  # keeps the venv out of git
    pip = [str(python), "-m", "pip", "install", "-q", "--upgrade"]
    for package in ("tensorflow-cpu", "tensorflow"):  # tensorflow-cpu lacks some platforms
        found = subprocess.run(
            [str(python), "-m", "pip", "index", "versions", package],
            capture_output=True, text=True,
        )  # fmt: skip
        if found.returncode == 0 and package in found.stdout:
            subprocess.run([*pip, package], check=True)
            return python
    raise SystemExit("neither tensorflow-cpu nor tensorflow is available from pip; use --skip-tf")


def run_worker(name: str, epochs: int, tf_python: Path | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TF_CPP_MIN_LOG_LEVEL="2")
    python = sys.executable
    if name == "tf-keras":
        python, env["KERAS_BACKEND"] = str(tf_python), "tensorflow"
    elif name == "keras-torch":
        env["KERAS_BACKEND"] = "torch"
    done = subprocess.run(
        [python, str(Path(__file__).resolve()), "--worker", name, "--epochs", str(epochs)],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        model = fields.get("Model name", "?").strip()
        cpus = fields.get("CPU(s)", "?").strip()
        flags = fields.get("Flags", "")
        bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
        return f"{model}, {cpus} CPUs, {'with' if bf16 else 'without'} bf16 instructions"
    except (OSError, ValueError):
        return platform.processor() or "unknown CPU"


def table(results: dict[str, list[dict]]) -> str:
    epoch = {
        name: statistics.median(t for r in runs for t in r["epochs"][1:])
        for name, runs in results.items()
    }
    pred = {
        name: {bs: statistics.median(r["predict"][str(bs)] for r in runs) for bs in PREDICT_BATCHES}
        for name, runs in results.items()
    }
    stream = {name: statistics.median(r["stream"] for r in runs) for name, runs in results.items()}
    base = "tf-keras" if "tf-keras" in results else None
    # the machine's speed drifts: compare each round's epochs with TF-Keras's in the same round
    ratio_of = {
        name: statistics.median(
            statistics.median(r["epochs"][1:]) / statistics.median(b["epochs"][1:])
            for r, b in zip(runs, results[base], strict=True)
        )
        for name, runs in results.items()
    } if base else {}  # fmt: skip
    lines = [
        "| contender | s/epoch | vs TF-Keras | predict() batch 1 (ms) | predict() batch 256 (ms) "
        "| stateful step (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for name in results:
        ratio = f"{ratio_of[name]:.2f}x" if base else "-"
        p1, p256 = (pred[name][bs] for bs in PREDICT_BATCHES)
        lines.append(
            f"| {CONTENDERS[name]} | {epoch[name]:.3f} | {ratio} | {p1:.1f} | {p256:.1f} "
            f"| {stream[name]:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-tf", action="store_true", help="do not run TF-Keras")
    parser.add_argument("--refresh-bench-venv", action="store_true",
                        help="upgrade tensorflow-cpu in .venv-bench")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=4, help="per process, the first untimed")
    parser.add_argument("--rounds", type=int, default=2, help="passes over all contenders")
    parser.add_argument("--only", nargs="*", choices=list(CONTENDERS), help="these contenders")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--worker", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.epochs)

    names = [n for n in (args.only or CONTENDERS) if not (args.skip_tf and n == "tf-keras")]
    tf_python = bench_python(args.refresh_bench_venv) if "tf-keras" in names else None
    print(f"{machine()}; seed model, N={N} T={T} D={D}, batch {BATCH}", flush=True)
    results: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names:
            result = run_worker(name, args.epochs, tf_python)
            results[name].append(result)
            times = ", ".join(f"{t:.3f}" for t in result["epochs"])
            print(f"round {round_ + 1} {name}: epochs {times} s; loss {result['loss']:.4f}",
                  flush=True)  # fmt: skip
    text = table(results)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Seed model training speed on a GPU: lstmkit's fit vs a hand-written PyTorch + cuDNN loop.

Model: LSTM(128) -> Dense(10, softmax), Adam, categorical cross-entropy; N=16384 samples of
T=100 steps with 32 features, batch 64 (256 steps per epoch). Both sides keep the data on the
device, use a fused Adam and never synchronise per step. Prints s/epoch (median of the timed
epochs after one warm-up epoch; lstmkit's are the epochs of one ``fit`` call, as a user sees
them, so its one-off copy of the data to the GPU is not counted; also with its CUDA-graph
replay of the step turned off) and the ratio ours / PyTorch; then lstmkit's ``evaluate`` and
``predict`` over the same data, with their steps replayed as CUDA graphs and without.
``--profile`` also prints, for 20 training steps of each, the CUDA kernels and the host-side
operators that take the most time (torch.profiler).

    PYTHONPATH=src python3 bench/fit_gpu.py [--epochs 3] [--profile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

N, T, FEATURES, H, C, BATCH = 16384, 100, 32, 128, 10, 64


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, T, FEATURES)).astype("float32")
    y = np.eye(C, dtype="float32")[rng.integers(0, C, N)]
    return x, y


def time_epochs(run_epoch, epochs: int) -> float:
    run_epoch()  # warm-up: cuDNN plans, allocator
    times = []
    for _ in range(epochs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        run_epoch()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def lstmkit_model():
    from lstmkit.layers import LSTM, Dense
    from lstmkit.models import Sequential

    model = Sequential([LSTM(H, input_shape=(T, FEATURES)), Dense(C, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def lstmkit_epochs(x: np.ndarray, y: np.ndarray, epochs: int) -> float:
    """Median s/epoch of one ``fit`` call of 1 + epochs epochs, the first a warm-up."""
    from lstmkit.callbacks import Callback

    class EpochTimer(Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            torch.cuda.synchronize()
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    lstmkit_model().fit(x, y, batch_size=BATCH, epochs=1 + epochs, verbose=0, callbacks=[timer])
    return statistics.median(timer.times[1:])


def lstmkit_eager_epochs(x: np.ndarray, y: np.ndarray, epochs: int) -> float:
    """As `lstmkit_epochs`, with the CUDA-graph replay of the step turned off."""
    os.environ["LSTMKIT_CUDA_GRAPHS"] = "0"
    try:
        return lstmkit_epochs(x, y, epochs)
    finally:
        del os.environ["LSTMKIT_CUDA_GRAPHS"]


def lstmkit_inference(x: np.ndarray, y: np.ndarray, graphs: bool) -> tuple[float, float]:
    """Median s of ``evaluate`` and of ``predict`` over all of x (three timed calls each, after
    one untimed), their steps replayed as CUDA graphs or not."""
    os.environ["LSTMKIT_CUDA_GRAPHS"] = "1" if graphs else "0"
    try:
        model = lstmkit_model()
        model.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, verbose=0)  # builds, on the GPU
        runs = (
            lambda: model.evaluate(x, y, batch_size=BATCH, verbose=0),
            lambda: model.predict(x, batch_size=BATCH, verbose=0),
        )
        medians = []
        for run in runs:
            run()
            times = []
            for _ in range(3):
                torch.cuda.synchronize()
                start = time.perf_counter()
                run()
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            medians.append(statistics.median(times))
        return medians[0], medians[1]
    finally:
        del os.environ["LSTMKIT_CUDA_GRAPHS"]


def pytorch_epoch(x: np.ndarray, y: np.ndarray, device: torch.device):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(FEATURES, H, batch_first=True)
            self.dense = torch.nn.Linear(H, C)

        def forward(self, inputs):
            _, (h, _) = self.lstm(inputs)
            return self.dense(h[0])

    net = Net().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7, fused=True)
    xs, labels = torch.from_numpy(x).to(device), torch.from_numpy(y).argmax(1).to(device)

    def epoch():
        order = torch.randperm(len(xs), device=device)
        xe, ye = xs[order], labels[order]
        for start in range(0, len(xs), BATCH):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(
                net(xe[start : start + BATCH]), ye[start : start + BATCH]
            )
            loss.backward()
            opt.step()

    return epoch


def profile(x: np.ndarray, y: np.ndarray, device: torch.device) -> None:
    """Top CUDA kernels and host operators over 20 training steps of each loop."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    steps = 20
    model = lstmkit_model()
    model.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, epochs=1, verbose=0)  # warm-up
    small_x, small_y = x[: steps * BATCH], y[: steps * BATCH]
    run_theirs = pytorch_epoch(small_x, small_y, device)
    run_theirs()
    runs = {
        "lstmkit fit": lambda: model.fit(small_x, small_y, batch_size=BATCH, verbose=0),
        "PyTorch hand loop": run_theirs,
    }
    for name, run in runs.items():
        torch.cuda.synchronize()
        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            run()
            torch.cuda.synchronize()
        events = prof.key_averages()
        launches = sum(e.count for e in events if e.device_type.name == "CUDA")
        print(f"\n== {name}: {steps} steps, {launches / steps:.0f} CUDA kernels per step")
        print(events.table(sort_by="self_cuda_time_total", row_limit=12))
        print(events.table(sort_by="self_cpu_time_total", row_limit=12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile 20 steps of each")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench/fit_gpu.py needs a CUDA GPU; none found.")
        return
    device = torch.device("cuda")
    x, y = data()
    ours = lstmkit_epochs(x, y, args.epochs)
    eager = lstmkit_eager_epochs(x, y, args.epochs)
    theirs = time_epochs(pytorch_epoch(x, y, device), args.epochs)
    if args.profile:
        profile(x, y, device)
    name = torch.cuda.get_device_name()
    print(f"device: {name}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    print(f"{'':28}{'s/epoch':>10}")
    print(f"{'lstmkit fit':28}{ours:>10.3f}")
    print(f"{'lstmkit fit, no CUDA graph':28}{eager:>10.3f}")
    print(f"{'PyTorch + cuDNN hand loop':28}{theirs:>10.3f}")
    print(f"ratio lstmkit / PyTorch: {ours / theirs:.2f}")
    graphed, eager = lstmkit_inference(x, y, True), lstmkit_inference(x, y, False)
    print(f"{'':28}{'graphed s':>10}{'eager s':>10}{'ratio':>8}")
    for i, name in enumerate(("lstmkit evaluate", "lstmkit predict")):
        print(f"{name:28}{graphed[i]:>10.3f}{eager[i]:>10.3f}{graphed[i] / eager[i]:>8.2f}")


if __name__ == "__main__":
    main()

"""Seed model training speed on a GPU: lstmkit's fit vs a hand-written PyTorch + cuDNN loop.

Model: LSTM(128) -> Dense(10, softmax), Adam, categorical cross-entropy; N=16384 samples of
T=100 steps with 32 features, batch 64 (256 steps per epoch). Both sides keep the data on the
device, use a fused Adam and never synchronise per step. Prints s/epoch (median of the timed
epochs after one warm-up epoch) and the ratio ours / PyTorch.

    PYTHONPATH=src python3 bench/fit_gpu.py [--epochs 3]
"""

from __future__ import annotations

import argparse
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


def lstmkit_epoch(x: np.ndarray, y: np.ndarray):
    from lstmkit.layers import LSTM, Dense
    from lstmkit.models import Sequential

    model = Sequential([LSTM(H, input_shape=(T, FEATURES)), Dense(C, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)


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
        order = torch.randperm(N, device=device)
        xe, ye = xs[order], labels[order]
        for start in range(0, N, BATCH):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(
                net(xe[start : start + BATCH]), ye[start : start + BATCH]
            )
            loss.backward()
            opt.step()

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench/fit_gpu.py needs a CUDA GPU; none found.")
        return
    device = torch.device("cuda")
    x, y = data()
    ours = time_epochs(lstmkit_epoch(x, y), args.epochs)
    theirs = time_epochs(pytorch_epoch(x, y, device), args.epochs)
    name = torch.cuda.get_device_name()
    print(f"device: {name}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    print(f"{'':28}{'s/epoch':>10}")
    print(f"{'lstmkit fit':28}{ours:>10.3f}")
    print(f"{'PyTorch + cuDNN hand loop':28}{theirs:>10.3f}")
    print(f"ratio lstmkit / PyTorch: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()

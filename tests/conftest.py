"""Test-wide settings.

The suite runs many tiny LSTMs; one intra-op thread is as fast for them and avoids the heavy
slow-down of oversubscribed threads when the machine is busy.
"""

import os

import pytest
import torch

torch.set_num_threads(1)

# Backends follow dispatch's fixed rules in the suite, so that runs are repeatable; the timing
# choice is tested on its own (tests/kernels/test_autotune.py).
os.environ["LSTMKIT_AUTOTUNE"] = "0"


@pytest.fixture
def no_tf32(monkeypatch):
    """True fp32 dots in cuDNN's and the Triton kernels' recurrences on CUDA (no effect on the
    CPU); torch's matmuls are fp32 by default."""
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if rnn is not None and hasattr(rnn, "fp32_precision"):
        monkeypatch.setattr(rnn, "fp32_precision", "ieee")
    else:
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)

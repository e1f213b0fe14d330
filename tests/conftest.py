"""Test-wide settings.

The suite runs many tiny LSTMs; one intra-op thread is as fast for them and avoids the heavy
slow-down of oversubscribed threads when the machine is busy.
"""

import os

import torch

torch.set_num_threads(1)

# Backends follow dispatch's fixed rules in the suite, so that runs are repeatable; the timing
# choice is tested on its own (tests/kernels/test_autotune.py).
os.environ["LSTMKIT_AUTOTUNE"] = "0"

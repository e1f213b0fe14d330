"""Test-wide settings.

The suite runs many tiny LSTMs; one intra-op thread is as fast for them and avoids the heavy
slow-down of oversubscribed threads when the machine is busy.
"""

import torch

torch.set_num_threads(1)

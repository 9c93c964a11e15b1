"""The shortest one-shot search under torchrun, for tests/e2e/test_distributed.py's exit test:
a trainer joins the group (nascli creates it), one tiny epoch of SPOS (DDP weight steps,
broadcast paths, averaged metrics), then the script simply ends.

    torchrun --nproc_per_node 2 ddp_exit.py
"""

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from nascli.nas.oneshot import SPOSTrainer  # noqa: E402
from tests.oneshot_models import TinyNet, accuracy, tiny_data  # noqa: E402

model = TinyNet()
optimizer = torch.optim.SGD(model.parameters(), 0.05)
trainer = SPOSTrainer(model, nn.CrossEntropyLoss(), accuracy, optimizer, 1, tiny_data(32),
                      batch_size=8, population_size=2, generations=0,
                      num_select=1, seed=0)  # fmt: skip
trainer.fit()

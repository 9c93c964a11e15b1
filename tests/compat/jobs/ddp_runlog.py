"""Run under torchrun by tests/compat/test_runlog_distributed.py: a DARTS search with NNI's
``enable_visualization()``; each rank writes the log directory it was given to
``<out>/rank<r>.txt``.

    torchrun --nproc_per_node 2 ddp_runlog.py --out DIR
"""

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from nascli.nas.oneshot import DartsTrainer  # noqa: E402
from tests.oneshot_models import TinyNet, accuracy, tiny_data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = TinyNet()
    trainer = DartsTrainer(model, nn.CrossEntropyLoss(), accuracy,
                           torch.optim.SGD(model.parameters(), 0.05), 1, tiny_data(32),
                           batch_size=8)  # fmt: skip
    trainer.enable_visualization()
    trainer.fit()
    (args.out / f"rank{trainer.rank}.txt").write_text(str(trainer.log_dir))


if __name__ == "__main__":
    main()

"""A one-shot search run under torchrun by tests/e2e/test_distributed.py. Each rank writes its
export, a digest of its weights and BN statistics, and its architecture state to
``<out>/rank<r>.json``.

    torchrun --nproc_per_node 2 ddp_search.py --algo darts|gdas|spos|enas|proxyless|random
        --out DIR [--init-self] [--crash-after-epoch 0] [--resume CKPT] [--epochs 2]
        [--rank-data]    # each rank holds different data (a rank-seeded generator)
"""

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from nascli.nas.oneshot import (  # noqa: E402
    Callback,
    DartsTrainer,
    EnasTrainer,
    GumbelDartsTrainer,
    ModelCheckpoint,
    ProxylessTrainer,
    RandomTrainer,
    SPOSTrainer,
)
from tests.oneshot_models import TinyNet, accuracy, reward, tiny_data  # noqa: E402


class Crash(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch):
        if epoch == self.epoch:
            os._exit(3)  # the whole job dies right after this epoch's checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algo", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--init-self", action="store_true")
    parser.add_argument("--crash-after-epoch", type=int)
    parser.add_argument("--checkpoint-dir", type=Path)
    parser.add_argument("--resume", type=Path)
    parser.add_argument("--rank-data", action="store_true")
    args = parser.parse_args()
    if args.init_self:
        dist.init_process_group("gloo")
    torch.manual_seed(int(os.environ["RANK"]) * 1000)  # different inits: DDP must sync them
    n_chosen = 1 if args.algo == "proxyless" else 2
    model = TinyNet(n_chosen=n_chosen)
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9)
    callbacks = []
    if args.checkpoint_dir:
        callbacks.append(ModelCheckpoint(args.checkpoint_dir))
    if args.crash_after_epoch is not None:
        callbacks.append(Crash(args.crash_after_epoch))
    common = dict(batch_size=8, callbacks=callbacks, seed=0)
    head = (model, nn.CrossEntropyLoss(), accuracy)
    data = tiny_data(64, seed=int(os.environ["RANK"]) if args.rank_data else 0)
    if args.algo == "darts":
        trainer = DartsTrainer(*head, optimizer, args.epochs, data, **common)
    elif args.algo == "gdas":
        trainer = GumbelDartsTrainer(*head, optimizer, args.epochs, data, warmup_epochs=1,
                                     **common)  # fmt: skip
    elif args.algo == "enas":
        trainer = EnasTrainer(*head, reward, optimizer, args.epochs, data,
                              ctrl_steps_aggregate=2, **common)  # fmt: skip
    elif args.algo == "proxyless":
        trainer = ProxylessTrainer(*head, optimizer, args.epochs, data, measure_cost=True,
                                   cost_weight=0.01, **common)  # fmt: skip
    elif args.algo == "spos":
        trainer = SPOSTrainer(*head, optimizer, args.epochs, data, population_size=4,
                              generations=1, num_select=2, **common)  # fmt: skip
    else:
        trainer = RandomTrainer(*head, optimizer, args.epochs, data, num_samples=4, **common)
    if args.resume:
        trainer.load_checkpoint(args.resume)
    trainer.fit()
    state = trainer.model.state_dict()
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "rank": trainer.rank,
        "world_size": trainer.dist.world_size,
        "export": trainer.export(),
        "weights": digest.hexdigest(),
        "arch": trainer.arch_probabilities(),
        "history": trainer.history,
    }
    (args.out / f"rank{trainer.rank}.json").write_text(json.dumps(result))
    if args.init_self:  # the group is the script's: it leaves it, as torch asks of a script
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

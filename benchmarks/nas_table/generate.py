"""Build the tabular NAS benchmark: train every architecture of a small space on the digits set.

    python benchmarks/nas_table/generate.py            # writes nas_table/digits_table.json
    python benchmarks/nas_table/generate.py --limit 5  # a quick look at five architectures
    python benchmarks/nas_table/generate.py --shard 1/3 & ...  # side by side, then without

The space (``DigitsSpace`` below, 384 architectures): a first convolution (3), two middle ops
(4 each), an optional skip around each middle op (2 each) and the head activation (2). Every
architecture is built with ``apply_fixed_architecture`` from the same model code, trained with
the same seed, and scored on a validation split and a held-out test split of scikit-learn's
bundled digits (offline). Tuners are judged against this table (``tuner_efficiency.py``) with
look-ups only, no training.

Each row also holds ``valid_curve``: the validation accuracy after every epoch (its last entry is
``valid_accuracy``), the learning curve a trial would report with ``report_intermediate_result``;
``benchmarks/early_stopping.py`` replays these curves through the assessors. Scoring the model
after each epoch draws no random numbers (no dropout, no batch norm), so the final figures are
those of the table generated without curves. Runs on one thread (``--threads``) by default, so
that the numbers do not depend on the machine's core count.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from nascli import space as spaces
from nascli.nas import InputChoice, LayerChoice, apply_fixed_architecture, model_search_space
from tuners import NoMoreTrialError, create_tuner

HERE = Path(__file__).resolve().parent
TABLE = HERE / "digits_table.json"


def _mid_ops(c: int) -> OrderedDict[str, nn.Module]:
    return OrderedDict(
        conv3x3=nn.Conv2d(c, c, 3, padding=1),
        conv5x5=nn.Conv2d(c, c, 5, padding=2),
        dil3x3=nn.Conv2d(c, c, 3, padding=2, dilation=2),
        maxpool=nn.MaxPool2d(3, 1, 1),
    )


class DigitsSpace(nn.Module):
    def __init__(self, channels: int = 16):
        super().__init__()
        self.conv1 = LayerChoice(
            OrderedDict(
                conv3x3=nn.Conv2d(1, channels, 3, padding=1),
                conv5x5=nn.Conv2d(1, channels, 5, padding=2),
                dil3x3=nn.Conv2d(1, channels, 3, padding=2, dilation=2),
            ),
            key="conv1",
        )
        self.mid1 = LayerChoice(_mid_ops(channels), key="mid1")
        self.skip1 = InputChoice(n_candidates=1, key="skip1")
        self.mid2 = LayerChoice(_mid_ops(channels), key="mid2")
        self.skip2 = InputChoice(n_candidates=1, key="skip2")
        self.act = LayerChoice(OrderedDict(relu=nn.ReLU(), tanh=nn.Tanh()), key="head_act")
        self.fc1 = nn.Linear(channels * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 8x8 -> 4x4
        for mid, skip in ((self.mid1, self.skip1), (self.mid2, self.skip2)):
            y = F.relu(mid(x))
            shortcut = skip([x])
            x = y if shortcut is None else y + shortcut
        return self.fc2(self.act(self.fc1(x.flatten(1))))


def digits_splits(seed: int = 0):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train, valid, test = order[:1000], order[1000:1400], order[1400:]
    return (x[train], y[train]), (x[valid], y[valid]), (x[test], y[test])


def train_and_score(arch, data, epochs: int, seed: int) -> dict:
    (xt, yt), (xv, yv), (xs, ys) = data
    torch.manual_seed(seed)
    model = DigitsSpace()
    apply_fixed_architecture(model, arch)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    seconds = 0.0
    curve = []
    for _ in range(epochs):
        start = time.process_time()
        model.train()
        order = torch.randperm(len(xt))
        for i in range(0, len(order), 64):
            batch = order[i : i + 64]
            optimizer.zero_grad()
            F.cross_entropy(model(xt[batch]), yt[batch]).backward()
            optimizer.step()
        seconds += time.process_time() - start
        curve.append(round(_accuracy(model, xv, yv), 5))
    return {
        "valid_accuracy": curve[-1],
        "test_accuracy": round(_accuracy(model, xs, ys), 5),
        "train_seconds": round(seconds, 3),
        "n_params": sum(p.numel() for p in model.parameters()),
        "valid_curve": curve,
    }


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def _trained(out: Path) -> dict[int, dict]:
    """Rows already trained (by any run) for the table ``out``: index -> row."""
    done: dict[int, dict] = {}
    for path in out.parent.glob(f"{out.stem}.progress-*.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                done[entry["index"]] = entry["row"]
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="only the first N architectures")
    parser.add_argument("--out", type=Path, default=TABLE)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--reverse", action="store_true", help="train from the last architecture backwards"
    )
    parser.add_argument(
        "--shard", default=None, metavar="I/N",
        help="train only every N-th architecture from the I-th (0-based) into its progress "
        "file, and write no table; a run without --shard then uses every shard's rows",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shard, shards = (int(x) for x in args.shard.split("/")) if args.shard else (0, 1)

    space = model_search_space(DigitsSpace())
    grid = create_tuner("GridSearch")
    grid.update_search_space(spaces.search_space_to_json(space))
    data = digits_splits(args.seed)
    # Rows are appended to a progress file as they are trained, so an interrupted run loses
    # nothing, and runs side by side (shards, one --reverse) skip what another one did.
    progress = args.out.with_name(
        f"{args.out.stem}.progress-{shard}of{shards}{'r' if args.reverse else ''}.jsonl"
    )
    archs = []
    while args.limit is None or len(archs) < args.limit:
        try:
            params = grid.generate_parameters(len(archs))
        except NoMoreTrialError:
            break
        archs.append(spaces.human_architecture(space, spaces.parse_parameters(space, params)))
    start = time.perf_counter()
    order = range(len(archs) - 1, -1, -1) if args.reverse else range(len(archs))
    for index in order:
        if index % shards != shard or index in _trained(args.out):
            continue
        arch = archs[index]
        row = {"architecture": arch, **train_and_score(arch, data, args.epochs, args.seed)}
        with open(progress, "a", encoding="utf-8") as f:
            f.write(json.dumps({"index": index, "row": row}) + "\n")
        print(
            f"{index + 1:4d} {json.dumps(arch, sort_keys=True)} valid {row['valid_accuracy']:.4f}"
            f" test {row['test_accuracy']:.4f}",
            flush=True,
        )
    done = _trained(args.out)
    rows = [done.get(i) for i in range(len(archs))]
    missing = [i for i, row in enumerate(rows) if row is None]
    if args.shard or missing:
        print(f"rows in {progress}; {len(missing)} architecture(s) still to train")
        return
    table = {
        "meta": {
            "command": "python benchmarks/nas_table/generate.py"
            + (f" --epochs {args.epochs}" if args.epochs != 12 else "")
            + (f" --threads {args.threads}" if args.threads != 1 else ""),
            "dataset": "scikit-learn digits: 1000 train / 400 validation / 397 test, split seed "
            f"{args.seed}",
            "training": f"Adam lr 0.005, batch 64, {args.epochs} epochs, torch seed {args.seed}",
            "curves": "valid_curve: validation accuracy after each epoch",
            "train_seconds": "CPU seconds of training (process time, one thread; scoring "
            "excluded), so that a loaded machine does not inflate them",
            "threads": args.threads,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "total_seconds": round(time.perf_counter() - start, 1),
        },
        "search_space": spaces.search_space_to_json(space),
        "architectures": rows,
    }
    spaces.write_json_atomic(args.out, table)
    for path in args.out.parent.glob(f"{args.out.stem}.progress-*.jsonl"):
        path.unlink()
    print(f"wrote {len(rows)} architectures to {args.out}")


if __name__ == "__main__":
    main()

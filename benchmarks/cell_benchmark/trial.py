"""One trial of the cell benchmark's generation: train the architecture the tuner chose with
every seed and report the per-epoch mean validation accuracy and, at the end, everything the
table stores (``nascli.nas.benchmark.training.train_and_measure``).

    python trial.py --data /tmp/digits.pt      # standalone: the first candidate of every edge

Run by ``generate.py`` through ``nascli create`` (one trial per isomorphism class).
"""

from __future__ import annotations

import argparse
import statistics

import torch

import nascli
from nascli import space as spaces
from nascli.nas import model_search_space
from nascli.nas.benchmark.cell_space import CellNet
from nascli.nas.benchmark.training import digits_splits, train_and_measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="digits cache file (torch.save)")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)

    space = model_search_space(CellNet())
    parameters = nascli.get_next_parameter()
    if parameters is None:
        decisions = spaces.first_candidate_architecture(space)
    else:
        decisions = spaces.parse_parameters(space, parameters, "parameter.json")
    arch = spaces.human_architecture(space, decisions)

    def on_epoch(epoch: int, accuracies: list[float]) -> None:
        nascli.report_intermediate_result(statistics.mean(accuracies))

    row = train_and_measure(arch, digits_splits(args.data), range(args.seeds), on_epoch=on_epoch)
    nascli.report_final_result({"default": statistics.mean(row["val"]), **row})
    print(f"{arch} val {row['val']} test {row['test']} in {row['train_seconds']} s", flush=True)


if __name__ == "__main__":
    main()

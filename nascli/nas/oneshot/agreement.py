"""Every rank takes the same decisions, whatever data each rank holds.

Under torchrun each rank may load, shard or augment its own data (a rank-seeded generator gives
every rank different images). Anything that feeds a decision of the search (validation scores,
SPOS / random-search rankings, BatchNorm statistics recalibrated before scoring) is therefore
computed on the union of the ranks' data: evaluation data is sharded (rank r evaluates items
r, r + world, ...), each rank sums its loss and metrics, and the sums and counts are all-reduced,
so every rank holds the same numbers, from N x less work per rank. Recalibrated BatchNorm
statistics are averaged over ranks the same way.

Called by ``BaseOneShotTrainer.evaluate`` and ``SinglePathTrainer.recalibrate_bn``; every rank
must call them (they are collective).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, Subset

from nascli.nas.oneshot.distributed import Distributed

__all__ = ["shard_for_evaluation", "all_reduce_sums", "average_bn_statistics"]


def shard_for_evaluation(dataset: Dataset, group: Distributed) -> Dataset:
    """This rank's share of ``dataset`` for evaluation (the whole of it when not distributed):
    a strided split, no item repeated (``DistributedSampler`` pads with repeats)."""
    if not group.enabled:
        return dataset
    n = len(dataset)  # type: ignore[arg-type]
    return Subset(dataset, list(range(group.rank, n, group.world_size)))


def all_reduce_sums(group: Distributed, sums: Mapping[str, float], count: int
                    ) -> tuple[dict[str, float], int]:  # fmt: skip
    """``(sums, count)`` added over ranks (unchanged when not distributed). Every rank must pass
    the same keys (they come from the same loss and metrics)."""
    if not group.enabled:
        return dict(sums), count
    keys = sorted(sums)
    t = torch.tensor([sums[k] for k in keys] + [float(count)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    values = t.cpu().tolist()
    return dict(zip(keys, values[:-1], strict=True)), int(round(values[-1]))


@torch.no_grad()
def average_bn_statistics(group: Distributed, model: nn.Module) -> None:
    """Average BatchNorm running means and variances over ranks (no-op when not distributed)."""
    if not group.enabled:
        return
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            for buffer in (m.running_mean, m.running_var):
                if buffer is not None:
                    dist.all_reduce(buffer)
                    buffer.div_(group.world_size)

"""``RandomTrainer``: random single-path supernet training (uniform paths), then random search:
``num_samples`` uniform architectures scored on the trained supernet (BatchNorm recalibrated
for each); export is the best of them (not a random pick, as NNI's was)."""

from __future__ import annotations

import json
from typing import Any

from nascli import space as spaces
from nascli.nas.oneshot.sampling import SinglePathTrainer

__all__ = ["RandomTrainer", "SinglePathTrainer"]


class RandomTrainer(SinglePathTrainer):
    """Args (besides the base trainer's): ``num_samples`` architectures scored after training
    (default 100: scoring one costs a few batches of BatchNorm recalibration and one pass over
    the architecture split, so a hundred cost about as much as a few epochs of supernet
    training, and the best of 20 was often a mediocre cell; docs/oneshot_quality.md);
    ``score`` / ``bn_batches`` / ``train_zero_ops`` as in ``SinglePathTrainer``."""

    def __init__(self, *args: Any, num_samples: int = 100, **kwargs: Any):
        self.num_samples = num_samples
        super().__init__(*args, **kwargs)

    def search(self) -> list[tuple[float, spaces.Chosen]]:
        self.best = []
        seen: set[str] = set()
        for _ in range(self.num_samples * 10):
            if len(seen) >= self.num_samples:
                break
            arch = self.sample_uniform()
            code = json.dumps(arch, sort_keys=True)
            if code not in seen:
                seen.add(code)
                self.best.append((self.score(arch), arch))
        return self.best

"""``UniqueGridSearch``: GridSearch over the cell space that proposes each isomorphism class once
(its representative, ``cell_graph.is_representative``), in a seeded shuffled order.

Named in the generation's config as a custom tuner (``tuner.codeDir`` / ``classFileName``).
The order is a pure function of ``shuffle_seed``, so the run replays and resumes exactly as
GridSearch does; shuffled, an interrupted run has trained a uniform sample of the classes.
``done_file`` (a JSON list of canonical keys) names classes a lost earlier run already trained
(``generate.py start --continue-from TABLE``): they are not proposed again.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from nascli.nas.benchmark.cell_graph import canonical_key, is_representative
from tuners.grid import GridSearchTuner


class UniqueGridSearch(GridSearchTuner):
    def __init__(self, optimize_mode: str = "maximize", seed: int | None = None,
                 shuffle_seed: int = 0, done_file: str | None = None):  # fmt: skip
        super().__init__(optimize_mode, seed)
        self.shuffle_seed = shuffle_seed
        self.done = set(json.loads(Path(done_file).read_text())) if done_file else set()

    def update_search_space(self, search_space: Any) -> None:
        super().update_search_space(search_space)
        self._grid = [arch for arch in self._grid if is_representative(self._cell(arch))]
        random.Random(self.shuffle_seed).shuffle(self._grid)
        self._grid = [a for a in self._grid if canonical_key(self._cell(a)) not in self.done]

    def _cell(self, arch: tuple) -> dict[str, str]:
        return {key: self.space[key].names[i] for key, i in zip(self.keys, arch, strict=True)}

"""``nascli ss_gen`` without ``--file`` writes NNI's default file name in the current directory,
as NNI's CI script expects (``nnictl ss_gen -t "python3 mnist.py"`` then a check that
``nni_auto_gen_search_space.json`` exists)."""

from __future__ import annotations

import json

from tests.helpers import PYTHON, REPO, run_nascli


def test_ss_gen_without_file_writes_nnis_default_name(tmp_path) -> None:
    result = run_nascli("ss_gen", "-t", f"{PYTHON} trial.py", "-d", str(REPO / "trial"),
                        cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = tmp_path / "nni_auto_gen_search_space.json"
    assert json.loads(written.read_text()) == json.loads(
        (REPO / "trial" / "search_space.json").read_text()
    )
    assert "nni_auto_gen_search_space.json" in result.stdout
    assert not (REPO / "trial" / "nni_auto_gen_search_space.json").exists()

"""Experiment config: NNI v1 keys parse into checked dataclasses; every malformed config gets one
line per problem naming the file, the field, the value and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from nascli.experiment.config import ConfigError, load_config, parse_duration

VALID = {
    "authorName": "ann",
    "experimentName": "digits",
    "trialConcurrency": 2,
    "maxExecDuration": "1h",
    "maxTrialNum": 10,
    "trainingServicePlatform": "local",
    "searchSpacePath": "search_space.json",
    "useAnnotation": False,
    "tuner": {"builtinTunerName": "Random", "classArgs": {"optimize_mode": "maximize"}},
    "trial": {"command": "python3 trial.py", "codeDir": "code", "gpuNum": 0},
    "localConfig": {"gpuIndices": "0,1", "maxTrialNumPerGpu": 2, "useActiveGpu": False},
}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "code").mkdir()
    (tmp_path / "search_space.json").write_text(
        '{"a": {"_type": "layer_choice", "_value": ["x", "y"]}}'
    )
    (tmp_path / "tuner_code").mkdir()
    (tmp_path / "tuner_code" / "my_tuner.py").write_text("")
    return tmp_path


def write(workdir: Path, doc: object, name: str = "config.yml") -> Path:
    path = workdir / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def test_valid_config_resolves_paths_and_units(workdir: Path) -> None:
    config = load_config(write(workdir, VALID))
    assert config.trial_concurrency == 2
    assert config.max_exec_duration == 3600
    assert config.max_trial_num == 10
    assert config.max_trial_retries == 0
    assert config.search_space_path == str(workdir / "search_space.json")
    assert config.trial.code_dir == str(workdir / "code")
    assert config.trial.gpu_num == 0
    assert config.local.gpu_indices == (0, 1)
    assert config.local.max_trial_num_per_gpu == 2
    assert config.tuner.builtin_name == "Random"
    assert config.tuner.class_args == {"optimize_mode": "maximize"}
    assert config.warnings == ()


def test_defaults_and_round_trip(workdir: Path) -> None:
    doc = {"trialConcurrency": 1, "tuner": {"builtinTunerName": "TPE"},
           "trial": {"command": "python t.py"}}  # fmt: skip
    config = load_config(write(workdir, doc))
    assert config.max_trial_num == 99999
    assert config.max_exec_duration == 999 * 86400
    assert config.search_space_path is None
    assert config.trial.code_dir == str(workdir)
    assert config.trial.gpu_num is None
    assert config.local.gpu_indices is None
    from nascli.experiment.config import ExperimentConfig

    assert ExperimentConfig.from_dict(config.to_dict()) == config


def test_custom_tuner_paths_resolve_against_the_config(workdir: Path) -> None:
    doc = copy.deepcopy(VALID)
    doc["tuner"] = {"codeDir": "tuner_code", "classFileName": "my_tuner.py",
                    "className": "MyTuner", "classArgs": {"x": 1}}  # fmt: skip
    config = load_config(write(workdir, doc))
    assert config.tuner.code_dir == str(workdir / "tuner_code")
    assert config.tuner.class_name == "MyTuner"


def test_ignored_nni_keys_warn(workdir: Path) -> None:
    doc = dict(VALID, multiThread=True, logLevel="info")
    config = load_config(write(workdir, doc))
    assert any("multiThread" in w for w in config.warnings)
    assert any("logLevel" in w for w in config.warnings)


@pytest.mark.parametrize(
    ("text", "expected"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400)]
)
def test_durations(text: str, expected: int) -> None:
    assert parse_duration(text) == expected


def _with(path: str, value: object) -> dict:
    doc = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


_DELETE = object()

MALFORMED = [
    # (id, document or YAML text, substrings the message must contain)
    ("concurrency-zero", _with("trialConcurrency", 0),
     ["trialConcurrency", "integer from 1 to 99999", "got 0"]),
    ("concurrency-string", _with("trialConcurrency", "two"),
     ["trialConcurrency", "'two' (str)"]),
    ("concurrency-bool", _with("trialConcurrency", True), ["trialConcurrency", "True (bool)"]),
    ("concurrency-missing", _with("trialConcurrency", _DELETE),
     ["trialConcurrency", "is required"]),
    ("max-trials-negative", _with("maxTrialNum", -5), ["maxTrialNum", "got -5"]),
    ("max-trials-float", _with("maxTrialNum", 2.5), ["maxTrialNum", "2.5 (float)"]),
    ("duration-no-unit", _with("maxExecDuration", "90"),
     ["maxExecDuration", "90s, 30m, 2h, 1d", "'90'"]),
    ("duration-bad-unit", _with("maxExecDuration", "2w"), ["maxExecDuration", "'2w'"]),
    ("duration-int", _with("maxExecDuration", 60), ["maxExecDuration", "60 (int)"]),
    ("duration-zero", _with("maxExecDuration", "0s"), ["maxExecDuration", "'0s'"]),
    ("retries-negative", _with("maxTrialRetries", -1), ["maxTrialRetries", "0 to 100"]),
    ("platform-remote", _with("trainingServicePlatform", "remote"),
     ["trainingServicePlatform", "must be one of local, ray", "'remote'"]),
    ("annotation-true", _with("useAnnotation", True),
     ["useAnnotation", "must be false", "LayerChoice"]),
    ("search-space-missing-file", _with("searchSpacePath", "nope.json"),
     ["searchSpacePath", "'nope.json' does not exist", "nascli ss_gen"]),
    ("search-space-not-string", _with("searchSpacePath", 3), ["searchSpacePath", "3 (int)"]),
    ("unknown-top-key", _with("trialConcurency", 2),
     ["trialConcurency", "unknown key", "did you mean 'trialConcurrency'"]),
    ("assessor-not-mapping", _with("assessor", "Medianstop"),
     ["assessor", "must be a mapping", "'Medianstop'"]),
    ("assessor-empty", _with("assessor", {"classArgs": {}}),
     ["assessor", "needs builtinAssessorName", "Medianstop, Curvefitting or ASHA"]),
    ("assessor-both", _with("assessor", {"builtinAssessorName": "ASHA", "codeDir": "tuner_code"}),
     ["assessor", "either builtinAssessorName or codeDir"]),
    ("assessor-unknown-key", _with("assessor", {"builtinAssesorName": "ASHA"}),
     ["assessor.builtinAssesorName", "did you mean 'builtinAssessorName'"]),
    ("assessor-class-args-list", _with("assessor", {"builtinAssessorName": "ASHA",
                                                    "classArgs": [1]}),
     ["assessor.classArgs", "must be a mapping"]),
    ("assessor-custom-missing-file", _with("assessor", {"codeDir": "tuner_code",
                                                        "classFileName": "a.py", "className": "A"}),
     ["assessor.classFileName", "'a.py' does not exist"]),
    ("log-dir", _with("logDir", "/tmp"), ["logDir", "NASCLI_HOME"]),
    ("tuner-missing", _with("tuner", _DELETE), ["tuner", "is required"]),
    ("tuner-not-mapping", _with("tuner", "Random"), ["tuner", "must be a mapping", "'Random'"]),
    ("tuner-empty", _with("tuner", {"classArgs": {}}), ["tuner", "needs builtinTunerName"]),
    ("tuner-both", _with("tuner.codeDir", "tuner_code"),
     ["tuner", "either builtinTunerName or codeDir"]),
    ("tuner-unknown-key", _with("tuner.builtinTunerNam", "TPE"),
     ["tuner.builtinTunerNam", "did you mean 'builtinTunerName'"]),
    ("tuner-class-args-list", _with("tuner.classArgs", [1, 2]),
     ["tuner.classArgs", "must be a mapping"]),
    ("tuner-custom-missing-class", _with("tuner", {"codeDir": "tuner_code",
                                                   "classFileName": "my_tuner.py"}),
     ["tuner.className", "is required"]),
    ("tuner-custom-missing-file", _with("tuner", {"codeDir": "tuner_code",
                                                  "classFileName": "other.py", "className": "T"}),
     ["tuner.classFileName", "'other.py' does not exist"]),
    ("tuner-custom-missing-dir", _with("tuner", {"codeDir": "nowhere", "classFileName": "t.py",
                                                 "className": "T"}),
     ["tuner.codeDir", "'nowhere' is not a directory"]),
    ("trial-missing", _with("trial", _DELETE), ["trial", "is required"]),
    ("trial-command-missing", _with("trial.command", _DELETE),
     ["trial.command", "is required"]),
    ("trial-command-empty", _with("trial.command", "  "),
     ["trial.command", "non-empty string"]),
    ("trial-code-dir-missing", _with("trial.codeDir", "missing_dir"),
     ["trial.codeDir", "'missing_dir' is not a directory"]),
    ("trial-gpu-negative", _with("trial.gpuNum", -1), ["trial.gpuNum", "got -1"]),
    ("trial-nas-mode", _with("trial.nasMode", "enas_mode"),
     ["trial.nasMode", "classic_mode", "'enas_mode'"]),
    ("trial-unknown-key", _with("trial.comand", "x"),
     ["trial.comand", "did you mean 'command'"]),
    ("gpu-indices-bad", _with("localConfig.gpuIndices", "0,a"),
     ["localConfig.gpuIndices", "comma-separated", "'0,a'"]),
    ("gpu-indices-duplicate", _with("localConfig.gpuIndices", "1,1"),
     ["localConfig.gpuIndices", "distinct"]),
    ("max-per-gpu-zero", _with("localConfig.maxTrialNumPerGpu", 0),
     ["localConfig.maxTrialNumPerGpu", "1 to 99"]),
    ("use-active-gpu-string", _with("localConfig.useActiveGpu", "yes"),
     ["localConfig.useActiveGpu", "true or false", "'yes'"]),
    ("stale-nni-key", _with("localConfig.maxTrialNumOnEachGpu", 2),
     ["localConfig.maxTrialNumOnEachGpu", "use maxTrialNumPerGpu"]),
    ("local-not-mapping", _with("localConfig", [1]), ["localConfig", "must be a mapping"]),
    ("top-level-list", "- a\n- b\n", ["top level must be a mapping"]),
    ("bad-yaml", "trialConcurrency: [1,\n", ["not valid YAML", "line"]),
    ("duplicate-key", "trialConcurrency: 1\ntrialConcurrency: 2\n",
     ["duplicate key 'trialConcurrency'", "line 2"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "expected"), [pytest.param(d, e, id=i) for i, d, e in MALFORMED]
)
def test_malformed_config_names_file_field_and_value(
    workdir: Path, doc: object, expected: list[str]
) -> None:
    path = write(workdir, doc)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert all(line.startswith(str(path)) for line in info.value.problems)
    assert info.value.exit_code == 2


def test_every_problem_is_reported_at_once(workdir: Path) -> None:
    doc = _with("trialConcurrency", 0)
    doc["maxExecDuration"] = "soon"
    doc["trial"]["codeDir"] = "missing"
    doc["tuner"]["bogus"] = 1
    with pytest.raises(ConfigError) as info:
        load_config(write(workdir, doc))
    fields = ["trialConcurrency", "maxExecDuration", "trial.codeDir", "tuner.bogus"]
    assert len(info.value.problems) == 4
    for field in fields:
        assert sum(f"{field}:" in line for line in info.value.problems) == 1, field
    assert "4 problems" in str(info.value)


def test_missing_config_file(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(workdir / "absent.yml")


def test_assessor_section_round_trips(workdir: Path) -> None:
    from nascli.experiment.config import ExperimentConfig

    doc = dict(VALID, assessor={"builtinAssessorName": "Medianstop",
                                "classArgs": {"start_step": 2}})  # fmt: skip
    config = load_config(write(workdir, doc))
    assert config.assessor.builtin_name == "Medianstop"
    assert config.assessor.class_args == {"start_step": 2}
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    custom = dict(VALID, assessor={"codeDir": "tuner_code", "classFileName": "my_tuner.py",
                                   "className": "Mine"})  # fmt: skip
    config = load_config(write(workdir, custom))
    assert config.assessor.code_dir == str(workdir / "tuner_code")
    assert load_config(write(workdir, VALID)).assessor is None
    # a config stored before assessors existed has no "assessor" entry
    stored = load_config(write(workdir, VALID)).to_dict()
    del stored["assessor"]
    assert ExperimentConfig.from_dict(stored).assessor is None

"""Experiment configuration: NNI v1 YAML (``config_nas.yml``) → frozen dataclasses.

``load_config(path)`` reads and checks the whole file and raises one ``ConfigError`` listing every
problem (file, field path, value, what is allowed, "did you mean" for unknown keys). It only reads:
nothing is started or written. Relative paths resolve against the config file's directory and
``~`` is expanded, as in NNI. Checks that need more than the file (the search space's content,
the tuner class, GPUs) are done by ``nascli.experiment.prepare``.

Keys NNI accepted but that mean nothing for a local nascli experiment (``multiThread``,
``logLevel``, ...) are accepted with a warning in ``ExperimentConfig.warnings``; keys asking for
something nascli does not do (``advisor``, annotations) are errors, so a config never silently
loses a meaning. The ``assessor`` section (early stopping) is checked here for its shape; its name
and ``classArgs`` are checked by building it (``prepare``).

The loader is bounded, so no file can make it burn CPU or memory: documents nest at most
``MAX_DEPTH`` levels, expand (aliases counted as often as they are used) to at most
``MAX_NODES`` nodes, keys must be hashable, and strings must be valid Unicode without NUL
bytes; messages quote at most ``_QUOTE_LIMIT`` characters of a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nascli._files import path_inside
from nascli._text import did_you_mean
from nascli.errors import ConfigError

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "TunerConfig",
    "AssessorConfig",
    "TrialConfig",
    "LocalConfig",
    "RayConfig",
    "load_config",
    "parse_config",
    "parse_duration",
]

MAX_COUNT = 99999
MAX_DEPTH = 64
MAX_NODES = 100_000
_QUOTE_LIMIT = 120
_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

_TOP_KEYS = {
    "authorName", "experimentName", "description", "trialConcurrency", "maxExecDuration",
    "maxTrialNum", "maxTrialRetries", "trainingServicePlatform", "searchSpacePath",
    "useAnnotation", "tuner", "assessor", "trial", "localConfig", "rayConfig",
}  # fmt: skip
# NNI keys with no effect on a local nascli experiment: accepted, with a warning.
_IGNORED_TOP_KEYS = {
    "multiPhase", "multiThread", "nniManagerIp", "debug", "versionCheck", "logLevel",
    "logCollection",
}  # fmt: skip
_UNSUPPORTED_TOP_KEYS = {
    "advisor": "advisors are not supported; use a 'tuner' section",
    "logDir": "nascli keeps experiments under $NASCLI_HOME; set that variable instead",
}
_TUNER_KEYS = {
    "builtinTunerName", "codeDir", "classFileName", "className", "classArgs",
    "includeIntermediateResults", "gpuIndices",
}  # fmt: skip
_ASSESSOR_KEYS = {"builtinAssessorName", "codeDir", "classFileName", "className", "classArgs"}
_TRIAL_KEYS = {"command", "codeDir", "gpuNum", "nasMode"}
_LOCAL_KEYS = {"gpuIndices", "maxTrialNumPerGpu", "useActiveGpu"}
_RAY_KEYS = {"address", "cpusPerTrial", "excludes", "orphanTimeout", "connectTimeout"}
PLATFORMS = ("local", "ray")


@dataclass(frozen=True)
class TunerConfig:
    """``tuner``: a built-in name, or a custom class from ``codeDir/classFileName``."""

    builtin_name: str | None = None
    code_dir: str | None = None
    class_file_name: str | None = None
    class_name: str | None = None
    class_args: dict[str, Any] = field(default_factory=dict)
    include_intermediate_results: bool = False

    @property
    def label(self) -> str:
        return self.builtin_name or f"{self.class_name} ({self.class_file_name})"


@dataclass(frozen=True)
class AssessorConfig:
    """``assessor`` (early stopping): a built-in name, or a custom class from
    ``codeDir/classFileName``."""

    builtin_name: str | None = None
    code_dir: str | None = None
    class_file_name: str | None = None
    class_name: str | None = None
    class_args: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.builtin_name or f"{self.class_name} ({self.class_file_name})"


@dataclass(frozen=True)
class TrialConfig:
    """``trial``: the shell command, the directory it runs in, GPUs per trial (None: the
    environment's ``CUDA_VISIBLE_DEVICES`` is passed through untouched; 0: GPUs hidden)."""

    command: str
    code_dir: str
    gpu_num: int | None = None


@dataclass(frozen=True)
class LocalConfig:
    """``localConfig`` of the local training service."""

    gpu_indices: tuple[int, ...] | None = None
    max_trial_num_per_gpu: int = 1
    use_active_gpu: bool = False


@dataclass(frozen=True)
class RayConfig:
    """``rayConfig`` of the Ray training service (``trainingServicePlatform: ray``).

    ``address``: ``auto`` (the cluster this machine belongs to, as ``ray start`` recorded it) or
    ``HOST:PORT`` of the head's GCS; ``cpus_per_trial``: Ray's ``num_cpus`` for each trial (its
    ``num_gpus`` is ``trial.gpuNum``); ``excludes``: patterns left out of the ``codeDir`` copy Ray
    ships to the nodes (``.gitignore`` is honoured as well); ``orphan_timeout``: seconds a trial's
    runner keeps an ended trial's files for a manager that died before collecting them;
    ``connect_timeout``: seconds ``create`` waits for the cluster to answer.
    """

    address: str = "auto"
    cpus_per_trial: float = 1.0
    excludes: tuple[str, ...] = ()
    orphan_timeout: int = 600
    connect_timeout: int = 30


@dataclass(frozen=True)
class ExperimentConfig:
    """A checked experiment config. Paths are absolute; durations are seconds."""

    path: str
    author_name: str
    experiment_name: str
    description: str
    trial_concurrency: int
    max_exec_duration: int
    max_trial_num: int
    max_trial_retries: int
    search_space_path: str | None
    tuner: TunerConfig
    trial: TrialConfig
    local: LocalConfig
    warnings: tuple[str, ...] = ()
    assessor: AssessorConfig | None = None
    platform: str = "local"
    ray: RayConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored with the experiment so resume needs no config file)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ExperimentConfig:
        local = dict(doc["local"])
        if local.get("gpu_indices") is not None:
            local["gpu_indices"] = tuple(local["gpu_indices"])
        ray = doc.get("ray")
        if ray is not None:
            ray = RayConfig(**{**ray, "excludes": tuple(ray.get("excludes", ()))})
        return cls(
            **{
                **doc,
                "tuner": TunerConfig(**doc["tuner"]),
                "trial": TrialConfig(**doc["trial"]),
                "local": LocalConfig(**local),
                "warnings": tuple(doc.get("warnings", ())),
                "assessor": AssessorConfig(**doc["assessor"]) if doc.get("assessor") else None,
                "ray": ray,
            }
        )


def parse_duration(text: Any) -> int:
    """``"90s" | "30m" | "2h" | "1d"`` → seconds. Raises ``ValueError`` otherwise."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and check the YAML config at ``path``. Raises ``ConfigError`` with every problem."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ["the file does not exist"]) from None
    except IsADirectoryError:
        raise ConfigError(path, ["is a directory, expected a YAML file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"cannot read it: {exc}"]) from None
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        problem = f"not valid YAML: nested deeper than {MAX_DEPTH} levels"
        raise ConfigError(path, [problem]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, [f"not valid YAML: {where}{problem}"]) from None
    return parse_config(doc, path)


def parse_config(doc: Any, path: str | Path) -> ExperimentConfig:
    """Check an already-loaded YAML document; ``path`` names it and anchors relative paths."""
    path = Path(path).expanduser().resolve()
    checker = _Checker(path.parent)
    if not isinstance(doc, Mapping):
        raise ConfigError(path, [f"the top level must be a mapping of keys, got {_show(doc)}"])
    config = checker.experiment(doc)
    if checker.problems or config is None:
        raise ConfigError(path, checker.problems)
    return ExperimentConfig(path=str(path), warnings=tuple(checker.warnings), **config)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate and unhashable keys (PyYAML would silently keep the
    last duplicate, and fail with a TypeError on an unhashable one), documents nested deeper than
    ``MAX_DEPTH`` and documents expanding to more than ``MAX_NODES`` nodes (an alias bomb)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )  # fmt: skip
            return super().compose_node(parent, index)  # type: ignore[no-untyped-call]
        finally:
            self._depth -= 1

    def get_single_node(self) -> Any:
        node = super().get_single_node()  # type: ignore[no-untyped-call]
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise yaml.composer.ComposerError(
                None, None,
                f"expands to more than {MAX_NODES} values (aliases repeat what they refer to)",
                node.start_mark,
            )  # fmt: skip
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be a plain value, got a {type(key).__name__}",
                    key_node.start_mark,
                ) from None  # fmt: skip
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` stands for once aliases are expanded (memoised per node, so a
    bomb is measured in time linear in its text)."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a cycle (recursive alias) counts once; the constructor refuses it
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = min(total, MAX_NODES + 1)
    return sizes[id(node)]


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    text = repr(value) if not isinstance(value, (dict, list)) or _small(value) else "..."
    if len(text) > _QUOTE_LIMIT:
        text = text[: _QUOTE_LIMIT - 3] + "..."
    return f"{text} ({type(value).__name__})"


def _small(value: Any, budget: int = 200) -> bool:
    """Whether a container is small enough to repr (an alias bomb's repr would not end)."""
    stack, seen = [value], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > budget:
            return False
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _bad_text(value: str) -> str | None:
    """Why a string from the config cannot be used (None when it can)."""
    if "\0" in value:
        return "must not contain a NUL byte"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (it holds a lone surrogate escape such as \\ud83d)"
    return None


class _Checker:
    """Collects every problem instead of stopping at the first."""

    def __init__(self, base_dir: Path):
        self.base_dir = base_dir
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    # ------------------------------------------------------------------ field helpers

    def unknown_keys(self, doc: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in doc:
            if key not in allowed:
                name = f"{where}.{key}" if where else str(key)
                self.fail(
                    name,
                    f"unknown key{did_you_mean(str(key), allowed)} "
                    f"(allowed keys: {', '.join(sorted(allowed))})",
                )

    def integer(
        self, doc: Mapping[str, Any], key: str, where: str, low: int, high: int, default: int | None
    ) -> int | None:
        if key not in doc or doc[key] is None:
            if default is None:
                self.fail(where, f"is required: an integer from {low} to {high}")
            return default
        value = doc[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(where, f"must be an integer from {low} to {high}, got {_show(value)}")
            return default
        return value

    def boolean(self, doc: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        value = doc.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(where, f"must be true or false, got {_show(value)}")
            return default
        return value

    def text(
        self, doc: Mapping[str, Any], key: str, where: str, default: str | None = None
    ) -> str | None:
        value = doc.get(key)
        if value is None:
            if default is None:
                self.fail(where, "is required: a non-empty string")
            return default
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"must be a non-empty string, got {_show(value)}")
            return default
        why = _bad_text(value)
        if why:
            self.fail(where, f"{why}, got {_show(value)}")
            return default
        return value

    def path(self, value: str) -> Path:
        return (self.base_dir / Path(value).expanduser()).resolve()

    def section(self, doc: Mapping[str, Any], key: str, required: bool) -> Mapping[str, Any] | None:
        value = doc.get(key)
        if value is None:
            if required:
                self.fail(key, "is required: a mapping")
            return None
        if not isinstance(value, Mapping):
            self.fail(key, f"must be a mapping of keys, got {_show(value)}")
            return None
        return value

    def gpu_indices(self, value: Any, where: str) -> tuple[int, ...] | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return (value,)
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",")]
            if parts and all(p.isdigit() for p in parts):
                indices = tuple(int(p) for p in parts)
                if len(set(indices)) == len(indices):
                    return indices
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        ):
            if len(set(value)) == len(value):
                return tuple(value)
        self.fail(
            where,
            f'must be a GPU index or distinct comma-separated indices like "0,2", '
            f"got {_show(value)}",
        )
        return None

    # ------------------------------------------------------------------ sections

    def experiment(self, doc: Mapping[str, Any]) -> dict[str, Any] | None:
        for key in doc:
            if key in _UNSUPPORTED_TOP_KEYS:
                self.fail(str(key), _UNSUPPORTED_TOP_KEYS[key])
            elif key in _IGNORED_TOP_KEYS:
                self.warnings.append(f"{key}: ignored (no effect on a local nascli experiment)")
        known = _TOP_KEYS | _IGNORED_TOP_KEYS | set(_UNSUPPORTED_TOP_KEYS)
        self.unknown_keys(doc, known, "")

        author = self.text(doc, "authorName", "authorName", default="nascli")
        name = self.text(doc, "experimentName", "experimentName", default="nascli-experiment")
        description = doc.get("description") or ""
        if not isinstance(description, str):
            self.fail("description", f"must be a string, got {_show(description)}")
        elif _bad_text(description):
            self.fail("description", f"{_bad_text(description)}, got {_show(description)}")
            description = ""
        concurrency = self.integer(doc, "trialConcurrency", "trialConcurrency", 1, MAX_COUNT, None)
        max_trials = self.integer(doc, "maxTrialNum", "maxTrialNum", 1, MAX_COUNT, MAX_COUNT)
        retries = self.integer(doc, "maxTrialRetries", "maxTrialRetries", 0, 100, 0)
        duration = 999 * 86400
        if doc.get("maxExecDuration") is not None:
            try:
                duration = parse_duration(doc["maxExecDuration"])
            except ValueError:
                self.fail(
                    "maxExecDuration",
                    "must be a positive whole number followed by s, m, h or d "
                    f"(e.g. 90s, 30m, 2h, 1d), got {_show(doc['maxExecDuration'])}",
                )
        platform = doc.get("trainingServicePlatform", "local")
        if platform not in PLATFORMS:
            self.fail(
                "trainingServicePlatform",
                f"must be one of {', '.join(PLATFORMS)}, got {_show(platform)}"
                f"{did_you_mean(str(platform), set(PLATFORMS))}",
            )
        if doc.get("useAnnotation") not in (None, False):
            self.fail(
                "useAnnotation",
                f"must be false (annotation NAS is not supported; write the search space with "
                f"LayerChoice/InputChoice), got {_show(doc.get('useAnnotation'))}",
            )
        search_space_path = None
        if doc.get("searchSpacePath") is not None:
            value = doc["searchSpacePath"]
            if not isinstance(value, str) or not value.strip() or _bad_text(value):
                self.fail("searchSpacePath", f"must be a file path, got {_show(value)}")
            else:
                resolved = self.path(value)
                if not resolved.is_file():
                    self.fail(
                        "searchSpacePath",
                        f"{value!r} does not exist (looked for {resolved}); generate it with "
                        "`nascli ss_gen` or remove the key to generate it at create",
                    )
                else:
                    search_space_path = str(resolved)
        tuner = self.tuner(self.section(doc, "tuner", required=True))
        assessor = self.assessor(self.section(doc, "assessor", required=False))
        trial = self.trial(self.section(doc, "trial", required=True))
        local = self.local(self.section(doc, "localConfig", required=False))
        ray_doc = self.section(doc, "rayConfig", required=False)
        ray = None
        if platform == "ray":
            ray = self.ray(ray_doc or {})
            if doc.get("localConfig") is not None:
                self.fail("localConfig", "applies to trainingServicePlatform local, not ray "
                          "(Ray assigns GPUs: set trial.gpuNum)")  # fmt: skip
        elif ray_doc is not None:
            self.fail("rayConfig", f"applies to trainingServicePlatform ray, not {platform!r}")
        if self.problems:
            return None
        return {
            "author_name": author,
            "experiment_name": name,
            "description": description,
            "trial_concurrency": concurrency,
            "max_exec_duration": duration,
            "max_trial_num": max_trials,
            "max_trial_retries": retries,
            "search_space_path": search_space_path,
            "tuner": tuner,
            "assessor": assessor,
            "trial": trial,
            "local": local,
            "platform": platform,
            "ray": ray,
        }

    def assessor(self, doc: Mapping[str, Any] | None) -> AssessorConfig | None:
        if doc is None:
            return None
        self.unknown_keys(doc, _ASSESSOR_KEYS, "assessor")
        fields = self.class_source(
            doc, "assessor", "builtinAssessorName", "Medianstop, Curvefitting or ASHA"
        )
        return None if fields is None else AssessorConfig(**fields)

    def class_source(
        self, doc: Mapping[str, Any], section: str, name_key: str, examples: str
    ) -> dict[str, Any] | None:
        """A tuner's or assessor's class: a built-in name, or ``codeDir`` + ``classFileName`` +
        ``className``; with its ``classArgs``. None when the section cannot say which."""
        class_args = doc.get("classArgs") or {}
        if not isinstance(class_args, Mapping) or not all(isinstance(k, str) for k in class_args):
            self.fail(
                f"{section}.classArgs", f"must be a mapping of arguments, got {_show(class_args)}"
            )
            class_args = {}
        custom = [k for k in ("codeDir", "classFileName", "className") if k in doc]
        if name_key in doc:
            if custom:
                self.fail(
                    section,
                    f"give either {name_key} or codeDir + classFileName + className, "
                    f"not both (found {name_key} and {', '.join(custom)})",
                )
                return None
            name = self.text(doc, name_key, f"{section}.{name_key}")
            return {"builtin_name": name, "class_args": dict(class_args)}
        if not custom:
            self.fail(
                section,
                f"needs {name_key} (a built-in {section}: {examples}) or "
                f"codeDir + classFileName + className (a custom {section})",
            )
            return None
        code_dir = self.text(doc, "codeDir", f"{section}.codeDir")
        class_file = self.text(doc, "classFileName", f"{section}.classFileName")
        class_name = self.text(doc, "className", f"{section}.className")
        if code_dir is not None:
            resolved = self.path(code_dir)
            if not resolved.is_dir():
                self.fail(
                    f"{section}.codeDir", f"{code_dir!r} is not a directory (looked for {resolved})"
                )
            elif class_file is not None and path_inside(resolved, class_file) is None:
                self.fail(
                    f"{section}.classFileName",
                    f"must be a file inside {section}.codeDir {str(resolved)!r} (a relative path "
                    f"without '..' leading out of it), got {_show(class_file)}",
                )
            elif class_file is not None and not (resolved / class_file).is_file():
                self.fail(
                    f"{section}.classFileName", f"{class_file!r} does not exist in {resolved}"
                )
            code_dir = str(resolved)
        return {
            "code_dir": code_dir,
            "class_file_name": class_file,
            "class_name": class_name,
            "class_args": dict(class_args),
        }

    def tuner(self, doc: Mapping[str, Any] | None) -> TunerConfig | None:
        if doc is None:
            return None
        self.unknown_keys(doc, _TUNER_KEYS, "tuner")
        include = self.boolean(
            doc, "includeIntermediateResults", "tuner.includeIntermediateResults", False
        )
        if doc.get("gpuIndices") is not None:
            self.gpu_indices(doc["gpuIndices"], "tuner.gpuIndices")
            self.warnings.append("tuner.gpuIndices: ignored (tuners run on the CPU)")
        fields = self.class_source(doc, "tuner", "builtinTunerName", "e.g. Random")
        if fields is None:
            return None
        return TunerConfig(**fields, include_intermediate_results=include)

    def trial(self, doc: Mapping[str, Any] | None) -> TrialConfig | None:
        if doc is None:
            return None
        self.unknown_keys(doc, _TRIAL_KEYS, "trial")
        command = self.text(doc, "command", "trial.command")
        code_dir_text = self.text(doc, "codeDir", "trial.codeDir", default=".")
        code_dir = self.path(code_dir_text or ".")
        if not code_dir.is_dir():
            self.fail(
                "trial.codeDir", f"{code_dir_text!r} is not a directory (looked for {code_dir})"
            )
        gpu_num = None
        if doc.get("gpuNum") is not None:
            gpu_num = self.integer(doc, "gpuNum", "trial.gpuNum", 0, MAX_COUNT, 0)
        mode = doc.get("nasMode", "classic_mode")
        if mode != "classic_mode":
            self.fail(
                "trial.nasMode",
                f"only 'classic_mode' is supported (one-shot NAS runs with nascli.nas.oneshot "
                f"trainers, not through an experiment), got {_show(mode)}",
            )
        if command is None:
            return None
        return TrialConfig(command=command, code_dir=str(code_dir), gpu_num=gpu_num)

    def ray(self, doc: Mapping[str, Any]) -> RayConfig:
        self.unknown_keys(doc, _RAY_KEYS, "rayConfig")
        address = self.text(doc, "address", "rayConfig.address", default="auto") or "auto"
        if address != "auto" and not re.match(r"^[^\s:/]+:[0-9]{1,5}$", address):
            self.fail("rayConfig.address",
                      f"must be auto or HOST:PORT of the Ray head (e.g. 10.0.0.5:6379), "
                      f"got {_show(address)}")  # fmt: skip
        cpus = doc.get("cpusPerTrial", 1)
        if isinstance(cpus, bool) or not isinstance(cpus, int | float) or not 0 < cpus <= 1024:
            self.fail("rayConfig.cpusPerTrial",
                      f"must be a number of CPUs above 0 and at most 1024 (fractions allowed), "
                      f"got {_show(cpus)}")  # fmt: skip
            cpus = 1
        excludes = doc.get("excludes") or []
        if not isinstance(excludes, list) or not all(
            isinstance(e, str) and e for e in excludes
        ):
            self.fail("rayConfig.excludes",
                      f"must be a list of path patterns, got {_show(excludes)}")  # fmt: skip
            excludes = []
        timeouts = {}
        for key, default in (("orphanTimeout", "10m"), ("connectTimeout", "30s")):
            try:
                timeouts[key] = parse_duration(doc.get(key, default))
            except ValueError:
                self.fail(f"rayConfig.{key}",
                          "must be a positive whole number followed by s, m, h or d "
                          f"(e.g. 30s, 10m), got {_show(doc.get(key))}")  # fmt: skip
                timeouts[key] = parse_duration(default)
        return RayConfig(
            address=address,
            cpus_per_trial=float(cpus),
            excludes=tuple(excludes),
            orphan_timeout=timeouts["orphanTimeout"],
            connect_timeout=timeouts["connectTimeout"],
        )

    def local(self, doc: Mapping[str, Any] | None) -> LocalConfig:
        if doc is None:
            return LocalConfig()
        if "maxTrialNumOnEachGpu" in doc:
            self.fail("localConfig.maxTrialNumOnEachGpu", "is not a key; use maxTrialNumPerGpu")
        others = {k: v for k, v in doc.items() if k != "maxTrialNumOnEachGpu"}
        self.unknown_keys(others, _LOCAL_KEYS, "localConfig")
        return LocalConfig(
            gpu_indices=self.gpu_indices(doc.get("gpuIndices"), "localConfig.gpuIndices"),
            max_trial_num_per_gpu=self.integer(
                doc, "maxTrialNumPerGpu", "localConfig.maxTrialNumPerGpu", 1, 99, 1
            )
            or 1,
            use_active_gpu=self.boolean(doc, "useActiveGpu", "localConfig.useActiveGpu", False),
        )

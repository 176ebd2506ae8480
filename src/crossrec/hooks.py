"""Kedro hooks that check the run's parameters before any node runs.

* Every top-level parameter key must be a block some pipeline declares (``params:<block>``):
  ``kedro run --params ingst.split.strategy=temporal`` fails at once with "did you mean
  'ingest'?" instead of silently running the default split.
* Every block with a schema is validated up front (whichever pipelines run), so a misspelt
  nested key fails before ingest spends minutes, not when (or if) its node is reached.
* Every error names where the value came from: the parameters file of ``conf/base`` or of the
  run environment that set it last, or ``--params``. The ``dotted key -> source`` map is
  registered with :func:`crossrec.config.set_param_sources` for the nodes' own checks too.
* Before the first featurize_modalities encode node, every model name in use is resolved
  without loading weights, so an unknown text model fails before images are encoded.

Nothing here imports torch: the schemas and pipeline modules are torch-free by design.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.resources
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from kedro.framework.hooks import hook_impl

from crossrec.config import (
    BLOCKS,
    RUNTIME_SOURCE,
    ConfigError,
    block_schema,
    describe_source,
    flatten_keys,
    lookup_source,
    parse_params,
    set_param_sources,
    unknown_key_message,
)

logger = logging.getLogger(__name__)

#: Keys Kedro itself may add to the parameters (none today); never reported as unknown.
ALWAYS_ALLOWED: frozenset[str] = frozenset()


# ----------------------------------------------------------------------------- pure helpers
def _matches(relative: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)


def parameter_files(env_dir: Path, patterns: Iterable[str]) -> list[Path]:
    """The parameters files of one environment folder, in a stable order (hidden ones skipped)."""
    if not env_dir.is_dir():
        return []
    patterns = list(patterns)
    found = []
    for path in sorted(env_dir.rglob("*")):
        relative = path.relative_to(env_dir)
        if (
            path.is_file()
            and path.suffix in (".yml", ".yaml", ".json")
            and not any(part.startswith(".") for part in relative.parts)
            and _matches(relative.as_posix(), patterns)
        ):
            found.append(path)
    return found


def source_map(
    env_dirs: Iterable[Path],
    patterns: Iterable[str],
    runtime_params: Mapping[str, Any] | None,
    root: Path,
) -> dict[str, str]:
    """``dotted key -> source``: later environments override earlier ones, ``--params`` wins.

    Files are read as plain YAML: only their keys matter here, so interpolations stay text.
    """
    sources: dict[str, str] = {}
    for env_dir in env_dirs:
        for path in parameter_files(env_dir, patterns):
            try:
                tree = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError):  # Kedro's own loader reports broken files
                continue
            label = _relative(path, root)
            for key in flatten_keys(tree):
                sources[key] = label
    for key in flatten_keys(dict(runtime_params or {})):
        sources[key] = RUNTIME_SOURCE
    return sources


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def check_top_level(
    params: Mapping[str, Any], known: Iterable[str], sources: Mapping[str, str]
) -> None:
    """Fail on top-level keys no pipeline reads, with a did-you-mean and where each was set."""
    valid = sorted(set(known) | ALWAYS_ALLOWED)
    unknown = [k for k in params if k not in valid and not str(k).startswith("_")]
    if not unknown:
        return
    problems = []
    for key in unknown:
        origin = describe_source(lookup_source(sources, str(key)))
        problems.append(
            f"  - {key}: {unknown_key_message(str(key), valid)}{f'; {origin}' if origin else ''}"
        )
    raise ConfigError(
        "Unknown top-level parameter(s); no pipeline reads them:\n" + "\n".join(problems)
    )


def declared_blocks(pipelines: Iterable[Any]) -> set[str]:
    """Top-level keys read by the nodes of ``pipelines`` (``params:<block>[.sub]`` inputs)."""
    blocks = set()
    for pipeline in pipelines:
        for node in pipeline.nodes:
            for name in node.inputs:
                if name.startswith("params:"):
                    blocks.add(name[len("params:") :].split(".")[0])
    return blocks


def all_pipelines(package: str) -> list[Any]:
    """Every pipeline of ``<package>.pipelines``, whatever ``--pipelines`` this run selected."""
    found = []
    for entry in importlib.resources.files(f"{package}.pipelines").iterdir():
        if entry.is_dir() and not entry.name.startswith(("_", ".")):
            module = importlib.import_module(f"{package}.pipelines.{entry.name}.pipeline")
            found.append(module.create_pipeline())
    return found


def validate_blocks(
    params: Mapping[str, Any], blocks: Iterable[str], sources: Mapping[str, str]
) -> None:
    """Parse each block that has a schema, so errors come before the first node runs."""
    for block in sorted(blocks):
        if block not in BLOCKS or block not in params:
            continue
        schema = block_schema(block)
        parse_params(schema, params[block], where=block, sources=sources, key=block)


def check_tuned_for(params: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Fail when ``finetune`` holds values tuned on another dataset than this run's.

    ``conf/tuned`` has one ``finetune:`` block whichever dataset it was tuned on; the tune
    export records that dataset (``finetune.tuned_for``) and this check holds a run to it.
    """
    finetune = params.get("finetune")
    tuned = finetune.get("tuned_for") if isinstance(finetune, Mapping) else None
    dataset = params.get("dataset")
    if not isinstance(tuned, Mapping) or dataset is None or tuned.get("dataset") == dataset:
        return
    origin = describe_source(lookup_source(sources, "finetune.tuned_for.dataset"))
    raise ConfigError(
        f"finetune.tuned_for.dataset is {tuned.get('dataset')!r}"
        f"{f' ({origin})' if origin else ''} but this run's dataset is {dataset!r}: those "
        f"finetune values were chosen on another dataset's validation split (study "
        f"{tuned.get('study')!r}, trial {tuned.get('trial')}). Tune this dataset first "
        f"(kedro run --pipelines tune --params dataset={dataset}), run without --env tuned, "
        "or apply them anyway with --params finetune.tuned_for=null."
    )


# ----------------------------------------------------------------------------- the hooks
class ParameterChecks:
    """Checks the merged parameters once per run, and the encoder models before encoding."""

    def __init__(self) -> None:
        self._context: Any = None
        self._models_checked = False

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._context = context

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._models_checked = False
        if self._context is None:
            return
        loader = self._context.config_loader
        root = Path(run_params.get("project_path") or self._context.project_path)
        run_env = run_params.get("env") or loader.env or loader.default_run_env
        envs = [loader.base_env] + ([run_env] if run_env and run_env != loader.base_env else [])
        if hasattr(loader, "layers"):  # an overlay env (--env tuned) also reads conf/local
            envs = loader.layers()
        sources = source_map(
            [Path(loader.conf_source) / env for env in envs],
            loader.config_patterns["parameters"],
            run_params.get("runtime_params"),
            root,
        )
        set_param_sources(sources)
        params = self._context.params
        from kedro.framework.project import PACKAGE_NAME

        check_top_level(params, declared_blocks(all_pipelines(PACKAGE_NAME or "crossrec")), sources)
        validate_blocks(params, BLOCKS, sources)
        check_tuned_for(params, sources)

    @hook_impl
    def before_node_run(self, node: Any, inputs: dict[str, Any]) -> None:
        from crossrec.pipelines.featurize_modalities import nodes as featurize

        encoders = (featurize.encode_text, featurize.encode_images, featurize.encode_audio)
        if self._models_checked or node.func not in encoders:
            return
        from crossrec.pipelines.featurize_modalities.checks import resolve_encoders

        resolved = resolve_encoders(inputs["params:featurize_modalities"], inputs["dataset_info"])
        for key, where in resolved.items():
            logger.info("%s resolves to %s", key, where)
        self._models_checked = True

    @hook_impl
    def after_pipeline_run(self) -> None:
        set_param_sources(None)

    @hook_impl
    def on_pipeline_error(self) -> None:
        set_param_sources(None)


# ------------------------------------------------------------- errors crossrec raises on purpose
#: Errors whose message already says what to fix (file, row, field, expected value): the user
#: sees the message; the traceback goes to the log files. Named, not imported, so this module
#: stays torch-free.
USER_ERRORS = frozenset(
    {
        "crossrec.config.ConfigError",
        "crossrec.data.errors.DataValidationError",
        "crossrec.data.errors.DatasetNotFoundError",
        "crossrec.data.errors.UnknownDatasetError",
        "crossrec.registry.UnknownComponentError",
        "crossrec.encoders.zoo.ModelNotFoundError",
        "crossrec.models.resume.ResumeMismatchError",
        "crossrec.hooks.RunConflictError",
    }
)
#: Set (to anything but "" / "0") to print the full traceback of those errors too.
TRACEBACK_ENV = "CROSSREC_TRACEBACK"


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is (a subclass of) one of :data:`USER_ERRORS`."""
    return any(f"{c.__module__}.{c.__qualname__}" in USER_ERRORS for c in type(error).__mro__)


def wants_traceback() -> bool:
    return os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


def log_files() -> list[str]:
    """Files the root logger writes to (``conf/logging.yml``: info.log)."""
    handlers = logging.getLogger().handlers
    return [h.baseFilename for h in handlers if isinstance(h, logging.FileHandler)]


def traceback_to_log_files(error: BaseException) -> None:
    """The full traceback in the log files only, not on the console."""
    record = logging.LogRecord(
        __name__,
        logging.ERROR,
        __file__,
        0,
        "run failed: %s",
        (error,),
        (type(error), error, error.__traceback__),
    )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def short_error_text(error: BaseException) -> str:
    """The message, and where the traceback went."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    files = " / ".join(log_files()) or "no log file"
    return (
        f"\ncrossrec: {type(error).__name__}: {message}\n"
        f"(full traceback in {files}; {TRACEBACK_ENV}=1 or `crossrec --verbose ...` prints it)\n"
    )


def install_short_errors() -> None:
    """Wrap ``sys.excepthook`` (Kedro's rich traceback printer) once per process."""
    previous = sys.excepthook
    if getattr(previous, "crossrec_short_errors", False):
        return

    def excepthook(etype, error, tb) -> None:
        if not is_user_error(error) or wants_traceback():
            previous(etype, error, tb)
            return
        traceback_to_log_files(error)
        sys.stderr.write(short_error_text(error))

    excepthook.crossrec_short_errors = True  # type: ignore[attr-defined]
    sys.excepthook = excepthook


class ShortErrors:
    """A data or configuration error crossrec raises on purpose ends the run with its one-line
    message instead of a long rich traceback that buries it."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        install_short_errors()


# ------------------------------------------------------------ one writer of fuse's artifacts
#: Outputs written by one node and read back by the next: two runs writing them at once
#: (e.g. fuse with different parameters) would build one run's graphs from the other's
#: features, so a run writing any of them holds a lock in their folder.
LOCKED_OUTPUTS = ("fused_item_features", "modality_graphs", "user_item_graph")
LOCK_NAME = ".writer.lock"


def artifact_folder(catalog: Any, names: Iterable[str]) -> Path | None:
    """The local folder of the first of ``names`` the catalog stores in a file."""
    for name in names:
        try:
            filepath = getattr(catalog.get(name), "_filepath", None)
        except Exception:  # noqa: BLE001 - not in this catalog
            continue
        if filepath is not None and getattr(catalog.get(name), "_protocol", "file") == "file":
            return Path(str(filepath)).parent
    return None


class RunConflictError(RuntimeError):
    """Another run holds the artifacts this run would write."""


def acquire_writer_lock(folder: Path) -> Any:
    """An exclusive, non-blocking lock on ``folder`` (released when the file closes or the
    process dies); fails naming the run that holds it. None where the OS has no ``fcntl``."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        return None
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_NAME, "a+")  # noqa: SIM115 - held for the run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunConflictError(
            f"another run is writing {', '.join(LOCKED_OUTPUTS)} in {folder} ({holder}); "
            "two runs at once would read each other's outputs. Wait for it to finish (or run "
            "the other configuration on a copy of the project)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}: {' '.join(sys.argv)}")
    handle.flush()
    return handle


class WriterLock:
    """Runs that write fuse's artifacts of one dataset run one at a time."""

    def __init__(self) -> None:
        self._handle: Any = None
        self._folder: Path | None = None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        written = [name for name in LOCKED_OUTPUTS if name in pipeline.all_outputs()]
        self._folder = artifact_folder(catalog, written)

    @hook_impl
    def before_node_run(self) -> None:
        """Locks at the first node, not before: a run refused by the parameter checks (which
        raise in ``before_pipeline_run``, where Kedro calls no error hook) holds nothing."""
        if self._folder is not None and self._handle is None:
            self._handle = acquire_writer_lock(self._folder)
            self._folder = None

    def release(self) -> None:
        """Removes the lock file while still holding it (a run leaves ``data/`` as it found it),
        then releases the lock."""
        self._folder = None
        if self._handle is not None:
            Path(self._handle.name).unlink(missing_ok=True)
            self._handle.close()
            self._handle = None

    @hook_impl
    def after_pipeline_run(self) -> None:
        self.release()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self.release()

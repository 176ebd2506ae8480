"""Kedro project settings.

``oc.env`` is enabled for every config file (Kedro allows it only in credentials by default) so
that the raw-data root can follow ``CROSSREC_DATA_DIR``. Parameters merge softly across
environments, so ``conf/tuned/parameters_finetune.yml`` written by ``tune`` can hold only the tuned
keys, and ``kedro run --env tuned`` layers them on ``conf/base`` and ``conf/local``
(:class:`OverlayConfigLoader`): every other value stays as the user configured it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

# Kedro 1.7 still calls OmegaConf.register_new_resolver, which omegaconf now flags on every run.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")



class OverlayConfigLoader(OmegaConfigLoader):
    """``OmegaConfigLoader`` where an overlay environment (``--env tuned``) goes on top of
    ``base`` AND the default run environment (``local``), instead of replacing ``local``: a
    study's few best values must not silently drop the user's own ``conf/local`` settings.
    Any other ``--env`` keeps Kedro's meaning (base, then that environment)."""

    def __init__(self, *args: Any, overlay_envs: Iterable[str] = (), **kwargs: Any) -> None:
        self.overlay_envs = frozenset(overlay_envs)
        super().__init__(*args, **kwargs)

    def layers(self) -> list[str]:
        """The environments read, lowest first."""
        run_env = self.env or self.default_run_env
        layers = [self.base_env]
        if (
            run_env in self.overlay_envs
            and self.default_run_env not in ("", self.base_env)
            and (Path(self.conf_source) / self.default_run_env).is_dir()  # a clone has no local
        ):
            layers.append(self.default_run_env)
        return layers + ([run_env] if run_env and run_env not in layers else [])

    def __getitem__(self, key: str) -> dict[str, Any]:
        if key in self or len(self.layers()) < 3 or key not in self.config_patterns:
            return super().__getitem__(key)
        run_env = self.env
        self.env = self.default_run_env
        try:
            below = super().__getitem__(key)  # base, then local
        finally:
            self.env = run_env
        _, env_configs, _, env_path, _ = self._read_raw_config(key)
        return self._merge_configs(below, self._merge_and_resolve(key, env_configs), key, env_path)


CONFIG_LOADER_CLASS = OverlayConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # `--env tuned` (written by the tune pipeline) layers on conf/local, not instead of it
    "overlay_envs": ["tuned"],
    "custom_resolvers": {"oc.env": oc.env},
    # An environment (conf/local, conf/tuned, ...) overrides only the parameter keys it names.
    "merge_strategy": {"parameters": "soft"},
}

# kedro-viz writes a .viz/ folder after every run through its hook; we only want `kedro viz`.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

from crossrec.hooks import ParameterChecks, ShortErrors, WriterLock  # noqa: E402  (after the warnings filter)
from crossrec.run_record import RunRecords  # noqa: E402

# Unknown / misspelt parameters fail before any node runs, naming the file or --params that
# set them; encoder model names are resolved before the first encoding. Every run leaves a record
# (command, machine, commit, wall time) in data/08_reporting/<dataset>/runs/. An error crossrec
# raises on purpose ends the run with its message; the traceback goes to info.log. Runs that
# write fuse's artifacts of a dataset run one at a time.
HOOKS = (ParameterChecks(), RunRecords(), ShortErrors(), WriterLock())

"""Kedro project settings.

``oc.env`` is enabled for every config file (Kedro allows it only in credentials by default) so
that the raw-data root can follow ``CROSSREC_DATA_DIR``.
"""

from __future__ import annotations

import warnings

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

# Kedro 1.7 still calls OmegaConf.register_new_resolver, which omegaconf now flags on every run.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"oc.env": oc.env},
}

# kedro-viz writes a .viz/ folder after every run through its hook; we only want `kedro viz`.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

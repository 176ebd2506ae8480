"""Kedro project settings.

``oc.env`` is enabled for every config file (Kedro allows it only in credentials by default) so
that the raw-data root can follow ``CROSSREC_DATA_DIR``. Parameters merge softly across
environments, so ``conf/tuned/parameters_finetune.yml`` written by ``tune`` can hold only the tuned
keys and ``kedro run --env tuned`` keeps every other default from ``conf/base``.
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
    # An environment (conf/local, conf/tuned, ...) overrides only the parameter keys it names.
    "merge_strategy": {"parameters": "soft"},
}

# kedro-viz writes a .viz/ folder after every run through its hook; we only want `kedro viz`.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

from crossrec.hooks import ParameterChecks, ShortErrors  # noqa: E402  (after the warnings filter)
from crossrec.run_record import RunRecords  # noqa: E402

# Unknown / misspelt parameters fail before any node runs, naming the file or --params that
# set them; encoder model names are resolved before the first encoding. Every run leaves a record
# (command, machine, commit, wall time) in data/08_reporting/<dataset>/runs/. An error crossrec
# raises on purpose ends the run with its message; the traceback goes to info.log.
HOOKS = (ParameterChecks(), RunRecords(), ShortErrors())

"""Raw-source adapters (the only readers of raw dataset files), registered by name."""

from crossrec.data.adapters import generic, mmrec, movielens  # noqa: F401
from crossrec.data.adapters.base import ADAPTERS, get_adapter, register

__all__ = ["ADAPTERS", "get_adapter", "register"]

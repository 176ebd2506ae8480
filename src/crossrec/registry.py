"""Named, pluggable components (adapters, fusion strategies, losses, user towers, baselines).

A component registers itself under a name with a decorator; configuration names it in YAML.
Adding one is one class (decorated) plus its YAML entry. A registry may list the modules that
define its built-in entries: they are imported on the first lookup, so a registry can live in a
torch-free module (config schemas validate names against it) while its entries import torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator

from crossrec.config import did_you_mean

T = TypeVar("T")


class UnknownComponentError(ValueError):
    """A configured name matches no registered component."""


class Registry(Generic[T]):
    """name -> component. ``builtin_modules`` are imported before the first lookup."""

    def __init__(
        self, kind: str, builtin_modules: Sequence[str] = (), builtin_names: Sequence[str] = ()
    ):
        self.kind = kind
        self._builtin_modules = tuple(builtin_modules)
        #: names the builtin modules register: config validation accepts them without importing
        #: those modules (torch); a test checks the list against the real registrations
        self.builtin_names = frozenset(builtin_names)
        self._loaded = not self._builtin_modules
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@LOSSES.register("bpr")`` on a class or function."""

        def add(component: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing is not component:
                raise ValueError(f"{self.kind} {name!r} is already registered ({existing!r})")
            self._entries[name] = component
            return component

        return add

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtin_modules:
                importlib.import_module(module)

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._entries

    def check(self, name: str) -> str:
        """``name`` when registered, else an error naming the known ones (pydantic validator)."""
        if name in self.builtin_names or name in self._entries:
            return name
        if name not in self:
            raise UnknownComponentError(
                f"unknown {self.kind} {name!r}{_in_parentheses(did_you_mean(name, self.names()))}; "
                f"registered: {', '.join(self.names())}"
            )
        return name

    def get(self, name: str) -> T:
        self._load_builtins()
        return self._entries[self.check(name)]

    def name_field(self, *also: str) -> Any:
        """A pydantic field type: a str that must name a registered component (or be one of
        ``also``, e.g. ``"none"``), checked without importing the components' modules."""

        def check(name: str) -> str:
            return name if name in also else self.check(name)

        return Annotated[str, AfterValidator(check)]


def _in_parentheses(suggestion: str) -> str:
    """`` (did you mean 'x'?)`` from config's ``" did you mean 'x'?"`` (empty stays empty)."""
    return f" ({suggestion.strip()})" if suggestion else ""

"""One name -> factory registry used for networks and trainers.

Built-in entries register themselves with the ``register`` decorator when their module is
imported; the registry imports those modules lazily on the first lookup. Other packages add
entries through entry points (``mednext_fw.networks`` / ``mednext_fw.trainers``), read on the
same first lookup, so a plug-in needs no change to this package.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable

from mednext_fw.errors import UserError


class RegistryError(UserError, KeyError):
    def __str__(self) -> str:  # KeyError would otherwise print the message with quotes
        return str(self.args[0])


class Registry:
    def __init__(self, kind: str, entry_point_group: str, builtin_modules: Iterable[str] = ()):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._builtin_modules = tuple(builtin_modules)
        self._entries: dict[str, Any] = {}
        self._lazy: dict[str, Any] = {}  # entry points not yet loaded
        self._loaded = False

    def register(self, name: str | None = None) -> Callable[[Any], Any]:
        def deco(obj: Any) -> Any:
            key = name or obj.__name__
            existing = self._entries.get(key)
            if existing is not None and existing is not obj:
                raise RegistryError(f"{self.kind} '{key}' is registered twice ({existing!r} and {obj!r})")
            self._entries[key] = obj
            return obj

        return deco

    def add(self, name: str, obj: Any) -> None:
        self.register(name)(obj)

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._builtin_modules:
            importlib.import_module(module)
        for ep in entry_points(group=self.entry_point_group):
            self._lazy.setdefault(ep.name, ep)

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(set(self._entries) | set(self._lazy))

    def get(self, name: str) -> Any:
        self._ensure_loaded()
        if name in self._entries:
            return self._entries[name]
        if name in self._lazy:
            ep = self._lazy.pop(name)
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plug-in must say which one
                raise RegistryError(
                    f"{self.kind} '{name}' from entry point '{ep.value}' failed to load: {exc}"
                ) from exc
            self._entries[name] = obj
            return obj
        lowered = {n.lower(): n for n in self.names()}
        hint = f" Did you mean '{lowered[name.lower()]}'?" if name.lower() in lowered else ""
        raise RegistryError(f"Unknown {self.kind} '{name}'.{hint} Available: {', '.join(self.names()) or 'none'}")

    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        return name in self._entries or name in self._lazy

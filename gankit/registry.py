"""Component registry and plugin loading.

Every component, built-in or not, arrives through an entry point of the
``gankit`` group; each entry point is loaded inside its own guard, so a broken
plugin is reported and skipped rather than taking gankit down.

Environment variables:

``GANKIT_BLOCK_PLUGINS``
    comma-separated distribution or entry-point names that are not loaded.
``GANKIT_ONLY_PLUGINS``
    comma-separated names; when set, only these plugins are loaded (gankit's
    own built-in components always are).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib.metadata
import inspect
import os
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
import pluggy

from gankit import hookspecs, kinds
from gankit.errors import UserError

KINDS = tuple(kinds.KINDS)  # the kinds and their records are in gankit.kinds
ENTRY_POINT_GROUP = "gankit"
CORE_DIST = "gankit"
BLOCK_ENV = "GANKIT_BLOCK_PLUGINS"
ONLY_ENV = "GANKIT_ONLY_PLUGINS"

# The distributions that ship in this repository. Recipes were written against
# their short names before any third-party plugin existed, so on a clash they
# keep the short name and the newcomer must be written ``dist:name``:
# installing a plugin must never break a recipe that worked.
FIRST_PARTY = frozenset(
    {CORE_DIST, "gankit-dcgan", "gankit-wgan", "gankit-progan", "gankit-msggan", "gankit-improved", "gankit-sagan", "gankit-sgan"}
)

#: An example for the contract suite: options (a dict) or a callable that
#: receives a temporary folder and returns options (to make files there).
Example = dict[str, Any] | Callable[[Path], dict[str, Any]]


@attrs.frozen
class Component:
    kind: str
    name: str
    factory: Callable[..., Any]
    options: type
    dist: str
    summary: str
    example: Example | None = None
    example_data: dict[str, Any] | None = None  # the [data] table networks are tested on

    @property
    def qualified_name(self) -> str:
        return f"{self.dist}:{self.name}"


@attrs.frozen
class PluginInfo:
    dist: str
    version: str
    entry_point: str
    error: str | None = None  # the failure, when the plugin did not load


def _summary(factory: Callable[..., Any], options: type) -> str:
    doc = inspect.getdoc(factory) or inspect.getdoc(options) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def short_name_keeper(entries: list[Component]) -> Component | None:
    """The component a bare name resolves to among ``entries`` (one kind and
    name): the only one, or the only first-party one; ``None`` when the name
    is ambiguous or unknown.

    Third parties that clash with each other get no keeper: which of them was
    installed first cannot be known reliably, so no recipe could rely on one."""
    if len(entries) == 1:
        return entries[0]
    first_party = [entry for entry in entries if entry.dist in FIRST_PARTY]
    return first_party[0] if len(first_party) == 1 else None


def _split(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}


def plugin_selection() -> tuple[set[str], set[str]]:
    """The names $GANKIT_BLOCK_PLUGINS blocks, and those $GANKIT_ONLY_PLUGINS
    keeps (empty: every plugin)."""
    return _split(os.environ.get(BLOCK_ENV)), _split(os.environ.get(ONLY_ENV))


class Registry:
    """Kinds and names of components, with the distribution that gave each."""

    def __init__(self) -> None:
        self._components: dict[tuple[str, str], list[Component]] = {}
        self.plugins: list[PluginInfo] = []
        self._current_dist = "<unknown>"

    # -- registering ------------------------------------------------------

    def add(
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        options: type,
        *,
        summary: str | None = None,
        example: Example | None = None,
        example_data: dict[str, Any] | None = None,
    ) -> None:
        """Register ``factory`` under ``kind`` and ``name``; ``options`` is the
        attrs class a recipe's table is structured into.

        ``example`` gives the options the contract suite builds it with (the
        defaults when omitted); ``example_data`` is the recipe's ``[data]``
        table a generator or discriminator is tested on (small ``shapes``
        images when omitted)."""
        if kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}; kinds are {', '.join(KINDS)}")
        if not attrs.has(options):
            raise TypeError(f"{kind} {name!r}: options must be an attrs class, got {options!r}")
        if ":" in name:
            raise ValueError(f"{kind} {name!r}: a name cannot contain ':'")
        component = Component(
            kind=kind,
            name=name,
            factory=factory,
            options=options,
            dist=self._current_dist,
            summary=summary if summary is not None else _summary(factory, options),
            example=example,
            example_data=example_data,
        )
        entries = self._components.setdefault((kind, name), [])
        if any(existing.dist == component.dist for existing in entries):
            raise ValueError(f"{kind} {name!r} is registered twice by {component.dist}")
        entries.append(component)

    # -- looking up -------------------------------------------------------

    def get(self, kind: str, name: str) -> Component:
        """Find a component by name or by ``dist:name``; a bare name shared
        by several distributions means the first-party one (see
        :data:`FIRST_PARTY`). Raises :class:`UserError` with the choices when
        the name is ambiguous, or with the nearest names when there is none."""
        if kind not in KINDS:
            raise UserError(f"unknown component kind {kind!r}; kinds are {', '.join(KINDS)}")
        dist, _, short = name.rpartition(":")
        entries = self._components.get((kind, short), [])
        if dist:
            entries = [entry for entry in entries if entry.dist == dist]
        keeper = short_name_keeper(entries)
        if keeper is not None:
            return keeper
        if entries:
            choices = " or ".join(repr(entry.qualified_name) for entry in entries)
            dists = ", ".join(entry.dist for entry in entries[:-1]) + f" and {entries[-1].dist}"
            raise UserError(f"{kind} {name!r} is registered by {dists}; write {choices}")
        known = sorted({n for (k, n) in self._components if k == kind})
        near = difflib.get_close_matches(short, known, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        failed = [p for p in self.plugins if p.error]
        broken = f"; plugins that failed to load: {', '.join(p.dist for p in failed)} (see `gankit plugins`)" if failed else ""
        raise UserError(f"unknown {kind} {name!r}{hint}; `gankit list {kind}` shows them all{broken}")

    def components(self, kind: str | None = None, pattern: str | None = None) -> list[Component]:
        found = [
            entry
            for (k, n), entries in sorted(self._components.items())
            for entry in entries
            if (kind is None or k == kind) and (pattern is None or fnmatch.fnmatch(n, pattern))
        ]
        return found

    def clashes(self) -> list[list[Component]]:
        """The groups of components that share a kind and a name."""
        return [entries for entries in self._components.values() if len(entries) > 1]

    def keeper(self, kind: str, name: str) -> Component | None:
        """The component the bare ``name`` resolves to, or ``None`` when it is
        ambiguous or unknown."""
        return short_name_keeper(self._components.get((kind, name), []))

    def recipe_name(self, component: Component) -> str:
        """How a recipe refers to ``component``: its short name when that
        resolves to it, otherwise ``dist:name``."""
        return component.name if self.keeper(component.kind, component.name) is component else component.qualified_name

    # -- loading plugins --------------------------------------------------

    def register_plugin(self, plugin: object, dist: str) -> None:
        """Call ``plugin``'s ``register_components`` hook with this registry."""
        manager = pluggy.PluginManager(hookspecs.PROJECT)
        manager.add_hookspecs(hookspecs)
        manager.register(plugin)
        previous, self._current_dist = self._current_dist, dist
        try:
            manager.hook.register_components(registry=self)
        finally:
            self._current_dist = previous

    def load_entry_points(self, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> None:
        """Load every ``gankit`` entry point, each inside its own guard."""
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        blocked, only = plugin_selection()
        seen: set[tuple[str, str]] = set()
        for entry_point in sorted(entry_points, key=lambda ep: (ep.dist.name if ep.dist else "", ep.name)):
            dist = entry_point.dist.name if entry_point.dist else entry_point.name
            version = entry_point.dist.version if entry_point.dist else "?"
            if (dist, entry_point.name) in seen:  # the same distribution found twice on sys.path
                continue
            seen.add((dist, entry_point.name))
            names = {dist, entry_point.name}
            if dist != CORE_DIST and (names & blocked or (only and not names & only)):
                continue
            try:
                self.register_plugin(entry_point.load(), dist)
            except Exception as error:  # a broken plugin must not take gankit down
                detail = "".join(traceback.format_exception_only(type(error), error)).strip()
                self._forget(dist)
                self.plugins.append(PluginInfo(dist, version, entry_point.name, error=detail))
            else:
                self.plugins.append(PluginInfo(dist, version, entry_point.name))

    def _forget(self, dist: str) -> None:
        """Drop what a plugin registered before it failed half-way."""
        for key in list(self._components):
            self._components[key] = [entry for entry in self._components[key] if entry.dist != dist]
            if not self._components[key]:
                del self._components[key]


_default: Registry | None = None


def default_registry() -> Registry:
    """The registry of every installed plugin, loaded on first use."""
    global _default
    if _default is None:
        registry = Registry()
        registry.load_entry_points()
        _default = registry
    return _default

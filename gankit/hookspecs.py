"""The one hook gankit plugins implement.

A plugin is a distribution with an entry point in the ``gankit`` group that
points at a module (or object) carrying a ``register_components`` hook
implementation::

    # pyproject.toml
    [project.entry-points.gankit]
    mytechnique = "gankit_mytechnique"

    # gankit_mytechnique/__init__.py
    import gankit

    @gankit.hookimpl
    def register_components(registry):
        registry.add("generator", "mygan", MyGenerator, MyGeneratorOptions)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from gankit.registry import Registry

PROJECT = "gankit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_components(registry: "Registry") -> None:
    """Add this plugin's components to ``registry`` with
    :meth:`gankit.registry.Registry.add`.

    Each component has a kind (generator, discriminator, loss, regularizer,
    scheduler, metric, dataset, optimizer), a name, a factory and an attrs
    class for its options. The factory receives an options instance (and, for
    networks, a :class:`gankit.contracts.BuildContext`; for optimizers, the
    parameters first) and returns the component:

    ==============  =============================================
    kind            factory call
    ==============  =============================================
    generator       ``factory(options, context) -> Generator``
    discriminator   ``factory(options, context) -> Discriminator``
    optimizer       ``factory(params, options) -> torch.optim.Optimizer``
    every other     ``factory(options) -> Loss | Regularizer | ...``
    ==============  =============================================
    """

"""Plugins as pip leaves them, made in a temporary folder: the suite's
third-party distributions. A module of its own, not conftest.py, so that
importing it never depends on which of the suite's conftest files Python
saw first."""

from __future__ import annotations

import textwrap
from pathlib import Path

# A plugin a third party might ship: tiny networks and a loss, registered
# through an entry point like any other.
GOOD_PLUGIN = """
import gankit
from gankit.testing import TinyDiscriminator, TinyGenerator, TinyLoss, TinyOptions

@gankit.hookimpl
def register_components(registry):
    registry.add("generator", "toy", TinyGenerator, TinyOptions)
    registry.add("discriminator", "toy", TinyDiscriminator, TinyOptions)
    registry.add("loss", "toyloss", TinyLoss, TinyOptions)
"""

BROKEN_PLUGIN = """
raise RuntimeError("this plugin is broken on purpose")
"""


def make_distribution(site: Path, dist: str, module: str, code: str, version: str = "1.2.3") -> Path:
    """A distribution as pip leaves it: a module and a dist-info folder with
    an entry point in the ``gankit`` group."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[gankit]\n{module} = {module}\n")
    return site

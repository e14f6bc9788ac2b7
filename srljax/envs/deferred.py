"""gymnax without the plotting libraries it imports for its renderers.

`import gymnax` imports every gymnax env, and with them seaborn (pandas, scipy.stats) and
matplotlib.pyplot, which only the renderers of a few envs (Pong, the bsuite ones) call: 1.5 s of
the 2.6 s gymnax takes to import, paid by every process and MPI rank. `import_gymnax()` puts a
stand-in for each of those two modules in `sys.modules` first (only where nothing has imported
them yet); the first attribute read through a stand-in imports the real module, so a renderer, or
any later `import seaborn`, gets the library as usual.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types

DEFERRED = ("seaborn", "matplotlib.pyplot")


class _StandIn(types.ModuleType):
    """A module that imports the real one when an attribute is first read through it."""

    def __getattr__(self, attr: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def _defer(name: str) -> None:
    if name in sys.modules:
        return
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        sys.modules[name] = _StandIn(name)


def import_gymnax():
    """`import gymnax`, with seaborn and matplotlib.pyplot deferred to their first use."""
    if "gymnax" not in sys.modules:
        for name in DEFERRED:
            _defer(name)
    import gymnax
    return gymnax

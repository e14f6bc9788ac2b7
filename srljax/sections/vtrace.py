"""V-trace's config section, `vtrace.*` (`srljax.learners.vtrace` reads it with `ppo.*`'s optimiser,
epochs and losses: registry entry "vtrace"). Imports no jax.
"""
from __future__ import annotations

import dataclasses

from srljax.errors import UserError


@dataclasses.dataclass(frozen=True)
class VTraceConfig:
    """The `vtrace` section (algorithm.name=vtrace): the clips of IMPALA's importance weights."""

    rho_clip: float = 1.0
    """V-trace: clip of the importance weights in the targets and the policy gradient (rho bar)."""
    c_clip: float = 1.0
    """V-trace: clip of the trace-cutting weights (c bar)."""

    def validate(self, cfg) -> None:
        """Raise a UserError if a clip is not positive."""
        if self.rho_clip <= 0 or self.c_clip <= 0:
            raise UserError("vtrace.rho_clip and vtrace.c_clip must be > 0")

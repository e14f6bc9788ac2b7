"""Population-based training's config section, `pbt.*` (`srljax.dataflow.fused.pbt` reads it; the
fused host loop runs it). Imports no jax.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Tuple

from srljax.errors import UserError


@dataclasses.dataclass(frozen=True)
class PBTConfig:
    """The `pbt` section: population-based training of a fused population (`seeds`, `sweep`): now and
    then the worst members take the best members' learner state and perturb their swept settings."""

    interval: int = 0
    """Log intervals (each log_every_env_steps) between exploit/explore steps; 0: off. Perturbs the `sweep` keys."""
    fraction: float = 0.25
    """Each step the bottom fraction of members (by the mean of their last 100 episodes) copy one of the top fraction (at least one member)."""
    perturb: Tuple[float, ...] = (0.8, 1.25)
    """Explore: a copied member's swept settings are its donor's, each times one of these factors, drawn at random."""

    def validate(self, cfg) -> None:
        """Raise a UserError for values PBT cannot work with, or a run it cannot run on (a single run,
        no swept setting to perturb, distributed mode)."""
        if self.interval < 0:
            raise UserError(f"pbt.interval must be >= 0 (0: off), got {self.interval}")
        if not 0 < self.fraction <= 0.5:
            raise UserError(f"pbt.fraction must be in (0, 0.5] (the bottom and top fractions do not overlap), "
                            f"got {self.fraction}")
        if not self.perturb or not all(isinstance(f, (int, float)) and math.isfinite(f) and f > 0
                                       for f in self.perturb):
            raise UserError(f"pbt.perturb must be positive factors, e.g. [0.8, 1.25], got {list(self.perturb)}")
        if not self.interval:
            return
        if cfg.mode != "fused":
            raise UserError(f"pbt.interval={self.interval}: population-based training needs fused mode (mode={cfg.mode})")
        if not cfg.sweep:
            raise UserError(f"pbt.interval={self.interval}: PBT perturbs the swept settings; give at least one "
                            "(--sweep KEY=V1,V2,..., e.g. --sweep ppo.lr=1e-3,3e-4)")
        members = cfg.seeds * math.prod(len(v) for v in cfg.sweep.values() if isinstance(v, list))
        if members < 2:
            raise UserError(f"pbt.interval={self.interval}: PBT needs a population of at least 2 members, "
                            f"got {members} (--seeds N or more --sweep values)")

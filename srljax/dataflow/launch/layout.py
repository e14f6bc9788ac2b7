"""The rank layout of distributed mode: which rank has which role, and the routes between them.

Ranks are laid out in this order: trainers, policy workers, buffers, then actors with whatever is
left. Rank 0 is trainer 0, which logs. Every rank computes the same layout from the config, so a
layout that does not fit fails on every rank at once (rank 0 prints the one-line reason).
"""
from __future__ import annotations

import dataclasses
from typing import List

from srljax.config import DistributedConfig
from srljax.errors import UserError

@dataclasses.dataclass(frozen=True)
class Role:
    """What one rank does, and whom it talks to."""

    kind: str            # "trainer" | "policy" | "buffer" | "actor"
    index: int           # index among ranks of the same kind
    rank: int

    def __str__(self) -> str:
        return f"{self.kind} {self.index}"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Which rank has which role, and the routes between them."""

    trainers: List[int]
    policies: List[int]
    buffers: List[int]
    actors: List[int]

    @property
    def size(self) -> int:
        return len(self.trainers) + len(self.policies) + len(self.buffers) + len(self.actors)

    def role(self, rank: int) -> Role:
        for kind, ranks in (("trainer", self.trainers), ("policy", self.policies),
                            ("buffer", self.buffers), ("actor", self.actors)):
            if rank in ranks:
                return Role(kind, ranks.index(rank), rank)
        raise ValueError(f"rank {rank} is outside a layout of {self.size} ranks")

    def policy_of(self, actor_rank: int) -> Optional[int]:
        """The policy worker serving an actor (None with inline inference)."""
        if not self.policies:
            return None
        return self.policies[self.actors.index(actor_rank) % len(self.policies)]

    def sink_of(self, rank: int) -> int:
        """Where an actor (or buffer) posts its samples: a buffer, or a trainer."""
        if rank in self.actors:
            i = self.actors.index(rank)
            return self.buffers[i % len(self.buffers)] if self.buffers else self.trainers[i % len(self.trainers)]
        if rank in self.buffers:
            return self.trainers[self.buffers.index(rank) % len(self.trainers)]
        raise ValueError(f"rank {rank} posts no samples")

    def sources_of(self, rank: int) -> List[int]:
        """Ranks that post samples to this trainer or buffer."""
        posters = self.actors if (rank in self.buffers or not self.buffers) else self.buffers
        return [r for r in posters if self.sink_of(r) == rank]

    def clients_of(self, policy_rank: int) -> List[int]:
        return [a for a in self.actors if self.policy_of(a) == policy_rank]

    def param_readers(self) -> List[int]:
        """Ranks that read the parameter stream: policy workers, or every actor when inline."""
        return list(self.policies) if self.policies else list(self.actors)


def make_layout(dcfg: DistributedConfig, world_size: int) -> Layout:
    """The rank layout for `world_size` ranks; a UserError when the config does not fit."""
    dcfg.validate()
    if dcfg.inline_inference and dcfg.policy_workers:
        raise UserError(f"distributed.inline_inference is set but distributed.policy_workers="
                        f"{dcfg.policy_workers}; set policy_workers=0 (actors run the policy themselves)")
    fixed = dcfg.trainers + dcfg.policy_workers + dcfg.buffers
    n_actors = world_size - fixed
    need = max(1, dcfg.policy_workers, dcfg.buffers, dcfg.trainers if not dcfg.buffers else 1)
    if n_actors < need:
        raise UserError(
            f"rank layout does not fit -n {world_size}: {dcfg.trainers} trainer(s) + {dcfg.policy_workers} "
            f"policy worker(s) + {dcfg.buffers} buffer(s) leave {max(n_actors, 0)} actor rank(s), "
            f"at least {need} needed; run with mpirun -n {fixed + need} or more, or change distributed.*")
    if dcfg.buffers and dcfg.buffers < dcfg.trainers:
        raise UserError(f"distributed.buffers={dcfg.buffers} is fewer than distributed.trainers="
                        f"{dcfg.trainers}: every trainer needs a buffer feeding it")
    ranks = list(range(world_size))
    t, p, b = dcfg.trainers, dcfg.policy_workers, dcfg.buffers
    return Layout(trainers=ranks[:t], policies=ranks[t:t + p], buffers=ranks[t + p:t + p + b],
                  actors=ranks[t + p + b:])



"""The algorithms' config sections, one module per algorithm (`ppo`, `vtrace`, `dqn`, `sac`), each a
frozen dataclass with its own `validate(cfg)`.

They sit in the core layer beside `srljax.config` (which holds them as fields of `Config`), not in
`srljax.learners`, because the config layer may import nothing above it; each learner reads its
section, and its registry entry (`learners.registry.AlgorithmSpec.sections`) names the sections it
reads, which is how `config.validate` knows which sections' `validate` to call. Imports no jax.
"""

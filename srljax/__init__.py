"""srljax: JAX-first, vectorised, distributed reinforcement learning (SRL's dataflow).

    import srljax
    env = srljax.make_env("gymnax/CartPole-v1", num_envs=8)
    result = srljax.train("cartpole", overrides={"total_env_steps": 200_000})
"""
from srljax import config as configs
from srljax import presets
from srljax.learners import registry as _registry  # noqa: F401  (declares the algorithms' config sections)
from srljax.api import TrainResult, get_config, make_env, train
from srljax.run import RunResult, run

__all__ = ["configs", "presets", "make_env", "train", "run", "get_config", "RunResult", "TrainResult"]
__version__ = "0.1.0"

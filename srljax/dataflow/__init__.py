"""Dataflow: how a run's pieces are placed and joined. One room per concern; imports point down:

- `fused/`: fused mode, env + inference + learning in one jitted program per device: `loop` (the
  host loop and shared device helpers), `rollout` (PPO, V-trace), `replay` (DQN, SAC).
- `plan`, `build`, `distributed`: distributed mode's wiring: what a config's run is made of (`Plan`),
  each rank's worker built from it (`build_worker`), and the run itself, under mpirun or in-process.
- `roles/`: the workers of distributed mode (actor, policy, buffer, trainer, replay trainer) and
  the parts a trainer is made of (intake, sync, reporting, guards, multi-agent packing).
- `wire/`: the streams between workers: message layouts (`schema`), their protocols and
  in-process implementations (`streams`), MPI implementations (`mpi`).
- `replay/`: the distributed replay store (sum tree, n-step transitions, the sample-ratio gate).
- `launch/`: processes: the rank layout (`layout`), set-up and failure handling (`process`),
  waiting without blocking (`waiting`), the per-rank supervisor and the end-of-run judge (`ending`).

`fused/` imports only `launch/`; the wiring imports `roles/`, `roles/` imports `wire/` and
`replay/`, and those import only `launch/` (tests/test_architecture.py checks it). Importing this
package imports neither jax nor mpi4py; the modules that need them import them.
"""

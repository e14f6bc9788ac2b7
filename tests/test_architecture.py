"""The package's shape, checked from its source (ast), so that it cannot drift:

- layers point one way: top (run, api, cli) -> dataflow -> learners -> envs -> core (config,
  presets, errors, process, checkpoint, runlog); every import, lazy ones inside functions too;
- no import cycle between modules;
- no constructor over 8 parameters (roles take their config sections and stream ends whole);
- no file over 400 lines;
- no game knowledge in the generic layers (dataflow, learners): the env tells them what they need;
- `dataflow/` is rooms by concern, whose imports point down too (`ROOMS`).
"""
import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "srljax"
LAYERS = {"core": 0, "envs": 1, "learners": 2, "dataflow": 3, "top": 4}
TOP = {"srljax", "srljax.__main__", "srljax.api", "srljax.cli", "srljax.evaluate", "srljax.matchup", "srljax.playback", "srljax.run"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def layer(module: str) -> int:
    if module in TOP:
        return LAYERS["top"]
    sub = module.split(".")[1]
    return LAYERS.get(sub, LAYERS["core"])


def imports(module: str):
    """(imported srljax module, line) for every import statement in `module`, at any depth."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "srljax":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "srljax":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"      # `from pkg import submodule` imports the submodule
                yield (sub if sub in MODULES else base), node.lineno


def test_the_parser_sees_the_package():
    assert {"srljax.config", "srljax.dataflow.roles.trainer", "srljax.learners.registry", "srljax.run"} <= set(MODULES)
    found = dict(imports("srljax.dataflow.roles.trainer"))
    assert "srljax.dataflow.roles.intake" in found and "srljax.errors" in found


def test_layers_point_one_way():
    upward = []
    for module in MODULES:
        for target, line in imports(module):
            if target in MODULES and layer(target) > layer(module):
                upward.append(f"{MODULES[module].relative_to(PKG.parent)}:{line} imports {target}")
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = {m: {t for t, _ in imports(m) if t in MODULES and t != m} for m in MODULES}
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):                    # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_a_planted_upward_import_and_cycle_would_be_found(tmp_path, monkeypatch):
    """The checks above can fail: a learner importing the dataflow is caught."""
    bad = tmp_path / "srljax" / "learners"
    bad.mkdir(parents=True)
    (bad / "oops.py").write_text("def f():\n    from srljax.dataflow.roles import trainer\n")
    monkeypatch.setattr(f"{__name__}.PKG", tmp_path / "srljax")
    monkeypatch.setitem(MODULES, "srljax.learners.oops", bad / "oops.py")
    assert ("srljax.dataflow.roles.trainer", 2) in list(imports("srljax.learners.oops"))
    assert layer("srljax.dataflow.roles.trainer") > layer("srljax.learners.oops")


def test_no_constructor_takes_more_than_8_parameters():
    wide = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                a = node.args
                n = len(a.posonlyargs) + len(a.args) - 1 + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
                if n > 8:
                    wide.append(f"{path.relative_to(PKG.parent)}:{node.lineno} takes {n}")
    assert not wide, wide


def test_no_file_over_400_lines():
    long = {str(p.relative_to(PKG.parent)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


@pytest.mark.parametrize("layer_dir", ["dataflow", "learners"])
def test_no_game_knowledge_in_the_generic_layers(layer_dir):
    pattern = re.compile(r"hns|hide|seek|agent_exists", re.IGNORECASE)
    found = [f"{p.relative_to(PKG.parent)}:{i}: {line.strip()}"
             for p in sorted((PKG / layer_dir).rglob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, found


def test_the_algorithm_is_looked_up_in_one_registry_by_both_modes():
    """Neither mode names an algorithm: fused and distributed mode both read learners.registry."""
    from srljax import config as C
    from srljax import presets
    from srljax.errors import UserError
    from srljax.learners import registry
    from srljax.run import check

    for mode_file in ("dataflow/fused/rollout.py", "dataflow/fused/replay.py", "dataflow/plan.py"):
        text = (PKG / mode_file).read_text()
        assert "registry" in text and "learners.ppo" not in text and "vtrace" not in text, mode_file
    assert registry.get("ppo").learns_from == registry.get("vtrace").learns_from == "rollout"
    assert registry.get("dqn").learns_from == registry.get("sac").learns_from == "replay"
    loop = (PKG / "dataflow/fused/replay.py").read_text()    # one replay loop: the algorithm object drives it
    assert "registry" in loop and not re.search(r"cfg\.(dqn|sac)|== \"(dqn|sac)\"", loop)
    with pytest.raises(UserError, match="unknown algorithm 'a3c'; algorithm.name is one of dqn, ppo, sac, vtrace"):
        check(C.override(presets.get("cartpole"), {"algorithm.name": "a3c"}))
    # an old config.json (distributed.algorithm) still reads
    old = C.to_dict(presets.get("gym_cartpole"))
    old["distributed"]["algorithm"] = "vtrace"
    old["distributed"]["vtrace_rho_clip"] = 0.9
    del old["algorithm"], old["vtrace"]
    cfg = C.from_dict(old)
    assert cfg.algorithm.name == "vtrace" and cfg.vtrace.rho_clip == 0.9


def test_presets_and_config_import_no_jax():
    import subprocess
    import sys
    code = ("import sys, srljax, srljax.presets, srljax.learners.registry, srljax.run, srljax.cli, "
            "srljax.learners.protocols, srljax.learners.replay_spec; "
            "assert 'jax' not in sys.modules and 'mpi4py' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PKG.parent)


def test_the_network_reports_the_recurrent_state_size_the_dataflow_sizes_messages_by():
    from srljax import presets
    from srljax.envs.hide_and_seek.observations import observation_space
    from srljax.envs.spaces import MultiDiscrete
    from srljax.learners.models import make_model, recurrent_state_size

    cfg = presets.get("hns_quadrant")
    space = observation_space(4, 2, 1)
    model = make_model(cfg, space, MultiDiscrete([11, 11, 11, 2, 2]))
    assert model.state_size == recurrent_state_size(cfg.network, space) == 2 * cfg.network.hidden[-1]
    from srljax.envs.spaces import Box
    assert recurrent_state_size(cfg.network, Box(-1.0, 1.0, (4,))) == 0


# -- the written contracts (srljax/learners/protocols.py) and the one replay spec ----------------------
def small_spaces(spec):
    """Spaces an entry drives: Box actions for an algorithm that takes only bounded boxes, else Discrete."""
    from srljax.envs.spaces import Box, Discrete
    box_only = spec.actions and "Discrete" not in spec.actions
    return Box(-1.0, 1.0, (4,)), (Box(-1.0, 1.0, (2,)) if box_only else Discrete(3))


@pytest.mark.parametrize("name", sorted(__import__("srljax.learners.registry", fromlist=["x"]).ALGORITHMS))
def test_every_registered_algorithm_satisfies_its_protocol(name):
    """Built on a small config, each registry entry's algorithm has every member of the protocol of
    what it learns from, with the protocol's parameters (names, in order, nothing more required)."""
    from srljax import config as C
    from srljax.learners import protocols, registry
    from srljax.learners.replay_spec import ReplaySettings

    spec = registry.get(name)
    cfg = C.override(C.Config(), {"algorithm.name": name, "network.hidden": [8], "total_env_steps": 1000})
    obs_space, action_space = small_spaces(spec)
    algo = spec.build(cfg, obs_space, action_space)
    protocol = protocols.ALGORITHM_PROTOCOLS[spec.learns_from]
    assert protocols.missing(algo, protocol) == [], f"{name} does not satisfy {protocol.__name__}"
    assert isinstance(algo, protocol)
    if spec.learns_from == "replay":
        assert isinstance(algo.replay, ReplaySettings) and all(isinstance(k, str) for k in algo.metric_keys)


@pytest.mark.parametrize("preset", ["cartpole", "cartpole_dqn"])
def test_both_fused_trainers_satisfy_the_host_loops_protocol(preset):
    """`fused.loop.train` and `run` drive `FusedTrainer` and `FusedReplayTrainer` through
    `protocols.FusedLoopTrainer` (and every member the loop calls is declared there)."""
    from srljax import presets
    from srljax.dataflow.fused.replay import FusedReplayTrainer
    from srljax.dataflow.fused.rollout import FusedTrainer
    from srljax.learners import protocols

    trainer = (FusedTrainer if preset == "cartpole" else FusedReplayTrainer)(presets.get(preset))
    assert protocols.missing(trainer, protocols.FusedLoopTrainer) == []
    assert isinstance(trainer, protocols.FusedLoopTrainer)
    loop = ast.parse(ast.get_source_segment((PKG / "dataflow/fused/loop.py").read_text(), next(
        n for n in ast.parse((PKG / "dataflow/fused/loop.py").read_text()).body
        if isinstance(n, ast.FunctionDef) and n.name == "train")))
    called = {n.attr for n in ast.walk(loop) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
              and n.value.id == "trainer"}
    assert len(called) >= 10 and called <= set(protocols.members(protocols.FusedLoopTrainer)), called


def test_a_member_missing_or_with_other_parameters_is_named():
    """The protocol check can fail: a lacking member and a changed signature are each one line."""
    from srljax.learners import protocols
    from srljax.learners.replay_spec import ReplaySettings

    class Toy:
        replay = ReplaySettings(buffer_size=8, batch_size=2, learning_starts=0, train_every=1, gradient_steps=1)
        metric_keys = ("loss",)

        def init(self, key, example_obs): ...
        def act(self, params, obs_b, key, env_steps): ...
        def update(self, state, batch): ...                        # no weight_n
        def host_metrics(self, env_steps): ...
        def greedy(self, params, obs_b, temperature): ...          # a further required parameter
        def policy_params(self, state): ...

    lacks = protocols.missing(Toy(), protocols.ReplayAlgorithm)
    assert [line.split("(")[0].split(":")[0] for line in lacks] == ["update", "greedy", "actor_step"], lacks
    assert not isinstance(Toy(), protocols.ReplayAlgorithm)

    class Stepper:
        def act_step(self, policy, obs, state, first, key, value): ...   # `value` required: callers omit it

    assert any(line.startswith("act_step(") for line in protocols.missing(Stepper(), protocols.RolloutAlgorithm))


REPLAY_FIELDS = {"buffer_size", "batch_size", "learning_starts", "train_every", "gradient_steps", "n_step", "gamma",
                 "prioritized", "alpha", "beta", "replay_ratio", "apex_epsilon", "apex_alpha", "capacity", "ratio"}


def getattr_defaults(tree):
    """(line, field) of every `getattr(x, "field", default)` and `hasattr(x, "field")` of a replay field."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant) and node.args[1].value in REPLAY_FIELDS
                and ((node.func.id == "getattr" and len(node.args) == 3) or node.func.id == "hasattr")):
            yield node.lineno, node.args[1].value


def test_no_replay_setting_is_read_through_getattr_defaults():
    """The algorithm's `ReplaySettings` are the one replay spec: nothing reads a replay field with a
    fallback (`getattr(section, "alpha", 0.6)`, `hasattr(section, "apex_epsilon")`), and neither mode
    reads a replay algorithm's config section (distributed buffers derive theirs from `algo.replay`)."""
    found = [f"{p.relative_to(PKG.parent)}:{line}: {field}" for p in MODULES.values()
             for line, field in getattr_defaults(ast.parse(p.read_text()))]
    assert not found, found
    assert list(getattr_defaults(ast.parse('getattr(s, "alpha", 0.6)\nhasattr(s, "apex_epsilon")'))) == [
        (1, "alpha"), (2, "apex_epsilon")]                       # the scan sees what it looks for
    dataflow = [f"{p.relative_to(PKG.parent)}" for p in sorted((PKG / "dataflow").rglob("*.py"))
                if re.search(r"cfg\.(dqn|sac)\b|\.section\b|from_section", p.read_text())]
    assert not dataflow, dataflow
    from srljax.learners import replay as device_replay
    from srljax.dataflow.replay import store as replay_store
    from srljax.learners import replay_spec
    assert device_replay.PRIORITY_EPS is replay_store.PRIORITY_EPS is replay_spec.PRIORITY_EPS
    assert sum("PRIORITY_EPS =" in p.read_text() for p in MODULES.values()) == 1


def test_config_validate_reaches_an_algorithms_sections_through_its_registry_entry():
    """`config.validate` names no algorithm: the registry entry's `sections` say which sections'
    `validate(cfg)` run; the `rollout` section (read by every algorithm) always does."""
    from srljax import config as C
    from srljax.errors import UserError
    from srljax.learners import registry

    text = (PKG / "config.py").read_text()
    assert not re.search(r"algorithm\.name ==|== \"(ppo|vtrace|dqn|sac)\"|cfg\.(ppo|vtrace|dqn|sac)\b", text)
    assert set(C.ALGORITHM_SECTIONS) == set(registry.ALGORITHMS)
    assert all(C.ALGORITHM_SECTIONS[n] == s.sections for n, s in registry.ALGORITHMS.items())
    bad = {"dqn.buffer_size": 64, "dqn.batch_size": 128, "rollout.rollout_len": 7}
    C.validate(C.override(C.Config(), {**bad, "rollout.rollout_len": 8}))   # ppo's run; dqn's are not read
    try:
        registry.register(registry.AlgorithmSpec("toy_q", "replay", "nowhere:build", "a test entry",
                                                 sections=("dqn",)))
        with pytest.raises(UserError, match=r"dqn.batch_size \(128\) must be <= dqn.buffer_size \(64\)"):
            C.validate(C.override(C.Config(), {**bad, "algorithm.name": "toy_q"}))
        with pytest.raises(UserError, match=r"rollout.rollout_len \(7\) must divide into ppo.minibatches"):
            C.validate(C.override(C.Config(), bad))
        with pytest.raises(ValueError, match="not config sections"):
            registry.register(registry.AlgorithmSpec("toy_r", "replay", "nowhere:build", "x", sections=("network",)))
    finally:
        registry.ALGORITHMS.pop("toy_q", None)
        C.ALGORITHM_SECTIONS.pop("toy_q", None)
    assert "toy_r" not in registry.ALGORITHMS


ROOMS = {"launch": 0, "replay": 1, "wire": 1, "fused": 1, "roles": 2, "wiring": 3}
"""Within `srljax.dataflow`: the wiring (plan, build, distributed) -> roles -> wire, replay -> launch;
fused mode -> launch. An import within one room is fine; none points up or sideways at its level."""


def room(module: str) -> str:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 else "wiring"


def test_dataflow_is_rooms_by_concern_whose_imports_point_down():
    dataflow = {m: p for m, p in MODULES.items() if m.startswith("srljax.dataflow.")}
    flat = sorted(m for m, p in dataflow.items() if p.parent == PKG / "dataflow" and p.name != "__init__.py")
    assert flat == ["srljax.dataflow.build", "srljax.dataflow.distributed", "srljax.dataflow.plan"], flat
    assert {room(m) for m in dataflow} == set(ROOMS), {room(m) for m in dataflow}
    wrong = []
    for m in dataflow:
        for target, line in imports(m):
            if target.startswith("srljax.dataflow.") and target in MODULES:
                a, b = room(m), room(target)
                if a != b and ROOMS[b] >= ROOMS[a]:
                    wrong.append(f"{m}:{line} imports {target} ({a} -> {b})")
    assert not wrong, wrong
    assert room("srljax.dataflow.roles.trainer") == "roles" and room("srljax.dataflow.plan") == "wiring"
    for package in {p.parent for p in dataflow.values()}:          # every room says what it holds
        assert ast.get_docstring(ast.parse((package / "__init__.py").read_text())), package

"""The capacity model's arithmetic on a fixed bench result (no timing is measured or asserted)."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("capacity_model", ROOT / "scripts" / "capacity_model.py")
cm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cm)

BENCH = {
    "machine": {"cores": 4},
    "latency": {"shared_memory": {"rows": [{"bytes": 64, "GBps": 0.01}, {"bytes": 1 << 20, "GBps": 1.0}]}},
    "envs": {"toy": {
        # actor: 1e4 steps per CPU second, 100 bytes per step (message 2 MB: 1 GB/s applies)
        "actor": {"env_steps_per_cpu_s": 1e4, "sample_bytes_per_env_step": 100.0, "sample_message_bytes": 2 << 20},
        "policy": {"batches": [{"requests_per_call": 1, "env_steps_per_cpu_s": 1e5},
                               {"requests_per_call": 4, "env_steps_per_cpu_s": 4e5}]},
        "trainer": {"env_steps_per_cpu_s": 5e4},
        "scaling": [{"mode": "sampling", "actors": 1, "env_steps_per_s": 1e4, "cores_available": 4.0},
                    {"mode": "sampling", "actors": 7, "env_steps_per_s": 4e4, "cores_available": 4.0}]}},
}


def test_role_costs_add_the_stream_copies():
    r = cm.Roles(BENCH, "toy")
    assert r.copy == pytest.approx(100 / 1e9)
    assert r.a == pytest.approx(1e-4 + 1e-7) and r.t == pytest.approx(2e-5)
    assert r.i == pytest.approx(2e-7 + cm.SPIN_S / (32 * 32))      # copies, and a spin per message
    assert r.handoff == pytest.approx(2 * cm.SPIN_S / 32)           # two spins per inference round
    assert r.p(1) == pytest.approx(1e-5) and r.p(4) == pytest.approx(2.5e-6)
    assert r.p(2) == pytest.approx((1e-5 + 2.5e-6) / 2)           # halfway in log k
    assert r.p(100) == pytest.approx(2.5e-6) and r.best_p() == (4, pytest.approx(2.5e-6))


def test_actor_bound_until_the_cores_run_out():
    r = cm.Roles(BENCH, "toy")
    one = cm.predict(r, "sampling", 1, cores=4)
    assert one["bottleneck"] == "actors" and one["env_steps_per_s"] == pytest.approx(1 / r.a)
    three = cm.predict(r, "sampling", 3, cores=4)
    assert three["env_steps_per_s"] == pytest.approx(3 / r.a)       # linear: 4 ranks on 4 cores
    seven = cm.predict(r, "sampling", 7, cores=4)                    # 8 ranks share 4 cores
    assert seven["env_steps_per_s"] == pytest.approx(4 / (r.a + r.i))   # all of them, nearly all to actors
    assert seven["bottleneck"] == "cpu"


def test_train_layout_moves_the_bottleneck_to_the_trainer():
    r = cm.Roles(BENCH, "toy")
    out = cm.predict(r, "train", 2, cores=64)
    assert out["bottleneck"] == "actors" and out["env_steps_per_s"] == pytest.approx(2 / r.a)
    out = cm.predict(r, "train", 40, cores=64)
    assert out["bottleneck"] == "trainer"
    assert out["env_steps_per_s"] == pytest.approx(1 / (r.t + r.i))


def test_check_reports_the_error_of_each_measured_point(tmp_path, capsys):
    rows = cm.check(BENCH)
    assert [x["actors"] for x in rows] == [1, 7]
    assert rows[0]["error"] == pytest.approx((1 / (1e-4 + 1e-7) - 1e4) / 1e4)
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(BENCH))
    assert cm.main([str(path)]) == 0
    assert "worst error" in capsys.readouterr().out


def test_cluster_plan_balances_gpus_and_keeps_actors_busy():
    r = cm.Roles(BENCH, "toy")
    plan = cm.plan_cluster(r, cores=100, gpus=1, gpu_speedup=10)
    actor_rate = 100 / r.a
    gpu_rate = 1 / (r.best_p()[1] / 10 + (r.t + r.i) / 10)
    assert plan["env_steps_per_s"] == pytest.approx(min(actor_rate, gpu_rate))
    assert plan["policy_gpus"] + plan["trainer_gpus"] == pytest.approx(1.0)
    cpu_only = cm.plan_cluster(r, cores=100, gpus=0, gpu_speedup=10)
    assert cpu_only["actors"] + cpu_only["policy_cores"] + cpu_only["trainer_cores"] == pytest.approx(100)


def test_srl_scale_arithmetic():
    bench = json.loads(json.dumps(BENCH))
    bench["envs"]["quadrant"] = bench["envs"].pop("toy")
    out = cm.srl_scale(bench, gpu_speedup=100, width_factor=1.0)
    q, r = out["quadrant"], cm.Roles(bench, "quadrant")
    assert q["env_steps_per_s"] == pytest.approx(960 / r.a_alone)
    assert q["sample_bytes_per_env_step"] == 4 * (2 * 132 * 4 + 28) + 8
    assert q["sample_GBps"] == pytest.approx(q["env_steps_per_s"] * q["sample_bytes_per_env_step"] / 1e9)
    assert q["trainer_cpu_cores"] == pytest.approx(q["agent_steps_per_s"] * r.t / 4)
    assert q["updates_per_s"] == pytest.approx(q["agent_steps_per_s"] / 655360)
    assert out["full"]["env_steps_per_s"] == pytest.approx(960 * cm.FULL_STEPS_PER_CORE)
    assert q["breaks_first"] in q["loads"]


def test_busy_cores_slow_each_other_by_the_measured_concurrency_efficiency():
    """With the concurrency probe's result (4 processes at once did 0.6 of 4 x one), every stage's
    limit is scaled by the speed of a busy core: 1 at one core, 0.6 at four, linear between."""
    bench = json.loads(json.dumps(BENCH))
    bench["envs"]["toy"]["concurrency"] = {"processes": 4, "efficiency": 0.6}
    r, plain = cm.Roles(bench, "toy"), cm.Roles(BENCH, "toy")
    assert r.speed(1) == 1.0 and r.speed(0.5) == 1.0 and plain.speed(4) == 1.0
    assert r.speed(4) == pytest.approx(0.6) and r.speed(8) == pytest.approx(0.6)
    assert r.speed(2.5) == pytest.approx(0.8)
    for mode, n, cores in (("sampling", 1, 1), ("sampling", 3, 4), ("sampling", 7, 2.5), ("train", 40, 4)):
        got, base = cm.predict(r, mode, n, cores), cm.predict(plain, mode, n, cores)
        assert got["env_steps_per_s"] == pytest.approx(base["env_steps_per_s"] * r.speed(cores))
        assert got["bottleneck"] == base["bottleneck"]


def test_training_overheads_come_from_the_one_actor_training_run():
    """With per-rank CPU of training runs in the bench, each role's in-run cost beyond its bench
    figure is taken from the 1-actor run (a calibration point) and added to that role's stage;
    without it the assumed handoff term stays."""
    bench = json.loads(json.dumps(BENCH))
    r0 = cm.Roles(bench, "toy")
    # the 1-actor run: actor 150 us, policy 30 us, trainer 40 us of CPU per env step
    run1 = {"mode": "train", "actors": 1, "env_steps_per_s": 5e3, "cores_used": 1.1,
            "role_cpu_us_per_step": {"actors": 150.0, "policy": 30.0, "trainer": 40.0}}
    run3 = {"mode": "train", "actors": 3, "env_steps_per_s": 9e3, "cores_used": 2.0,
            "role_cpu_us_per_step": {"actors": 140.0, "policy": 20.0, "trainer": 35.0}}
    bench["envs"]["toy"]["scaling"] += [run3, run1]
    r = cm.Roles(bench, "toy")
    assert r.overheads_from == 1
    assert r.overheads["actor"] == pytest.approx(150e-6 - r.a)
    assert r.overheads["policy"] == pytest.approx(30e-6 - r.p(1))
    assert r.overheads["trainer"] == pytest.approx(40e-6 - r.t - r.i)
    out = cm.predict(r, "train", 3, cores=2.0)
    costs = 150e-6 + (r.p(3) + r.overheads["policy"]) + 40e-6
    assert out["limit_cpu"] == pytest.approx(2.0 / costs)
    assert out["limit_actors"] == pytest.approx(2.0 / 150e-6)
    assert cm.predict(r0, "train", 3, cores=2.0)["limit_policy"] == pytest.approx(1 / (r0.p(3) + r0.handoff))
    rows = {x["actors"]: x for x in cm.check(bench) if x["mode"] == "train"}
    assert rows[1]["calibration"] and not rows[3]["calibration"]


def test_check_can_predict_for_the_machines_cores_instead_of_what_the_job_got():
    bench = json.loads(json.dumps(BENCH))
    bench["envs"]["toy"]["scaling"][1]["cores_used"] = 2.5
    used = {x["actors"]: x for x in cm.check(bench)}
    avail = {x["actors"]: x for x in cm.check(bench, "available")}
    assert used[7]["cores_available"] == 2.5 and avail[7]["cores_available"] == 4.0
    r = cm.Roles(bench, "toy")
    assert avail[7]["predicted"] == pytest.approx(cm.predict(r, "sampling", 7, 4.0)["env_steps_per_s"])

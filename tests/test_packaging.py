"""The package as a user installs it: pyproject.toml's dependencies agree with requirements.txt,
and the built wheel (not the source tree) installs into a fresh venv whose console scripts run
from another directory."""
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL_ONLY = {"wandb"}          # extras that requirements.txt (what `make test` installs) leaves out


def _requirement(line: str):
    """'jax>=0.10,<0.11  # note' -> ('jax', frozenset({'>=0.10', '<0.11'})); None for a blank line."""
    line = line.split("#", 1)[0].strip()
    if not line:
        return None
    m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", line)
    name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
    return name, frozenset(s.strip() for s in m.group(2).split(",") if s.strip())


def test_pyproject_dependencies_agree_with_requirements_txt():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    extras = project["optional-dependencies"]
    assert {"mpi", "hns", "dev"} <= set(extras)
    declared = [_requirement(r) for r in project["dependencies"]]
    for group in extras.values():
        declared += [_requirement(r) for r in group]
    pinned = [r for r in map(_requirement, (ROOT / "requirements.txt").read_text().splitlines()) if r]
    assert len(dict(declared)) == len(declared), "a package declared twice in pyproject.toml"
    assert len(dict(pinned)) == len(pinned), "a package pinned twice in requirements.txt"
    assert dict(pinned) == {k: v for k, v in declared if k not in OPTIONAL_ONLY}
    assert {_requirement(r)[0] for r in extras["mpi"]} == {"mpi4py", "mpich"}
    assert {_requirement(r)[0] for r in extras["hns"]} == {"mujoco"}
    assert {"pytest", "pytest-timeout", "nbclient", "nbformat", "ipykernel"} <= {_requirement(r)[0] for r in extras["dev"]}
    assert "orbax-checkpoint" not in dict(pinned)
    assert project["scripts"] == {"srljax-train": "srljax.cli:cli", "srljax-evaluate": "srljax.evaluate:cli"}


def test_orbax_is_never_imported():
    hits = [str(p) for d in ("srljax", "scripts", "tests") for p in (ROOT / d).rglob("*.py")
            if re.search(r"^\s*(import|from)\s+orbax", p.read_text(), re.M)]
    assert not hits


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A wheel built from a copy of the package's files, installed with pip into a fresh venv that
    sees the development venv's packages (one .pth line) but not the source tree."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    src.mkdir()
    shutil.copytree(ROOT / "srljax", src / "srljax", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", str(src), "--no-deps", "-w", str(tmp / "dist")], check=True, timeout=180,
                   capture_output=True)
    wheel, = (tmp / "dist").glob("srljax-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    vpy = venv / "bin" / "python"
    site = Path(subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies, already installed in the development venv: a plain path line (its own
    # .pth files, e.g. the editable srljax, are not run).
    (site / "_dev_venv_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(pip + ["--python", str(vpy), "install", "--no-deps", str(wheel)], check=True, timeout=180,
                   capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    work = tmp / "elsewhere"
    work.mkdir()
    return {"venv": venv, "site": site, "env": env, "cwd": work, "wheel": wheel}


def test_the_wheel_holds_py_typed_and_the_console_scripts(installed):
    import zipfile
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert "srljax/py.typed" in names and "srljax/tracking.py" in names and "srljax/evaluate.py" in names
    assert (installed["site"] / "srljax" / "py.typed").is_file()
    for script in ("srljax-train", "srljax-evaluate"):
        path = installed["venv"] / "bin" / script
        assert path.is_file() and path.read_text().startswith(f"#!{installed['venv'] / 'bin' / 'python'}")


def test_installed_console_script_trains_from_another_directory(installed):
    where = subprocess.run([str(installed["venv"] / "bin" / "python"), "-c",
                            "import srljax, srljax.cli; print(srljax.__file__); print(srljax.cli.__file__)"],
                           cwd=installed["cwd"], env=installed["env"], capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert Path(line).resolve().is_relative_to(installed["site"].resolve()), line
        assert not Path(line).resolve().is_relative_to(ROOT), line
    run_dir = installed["cwd"] / "run"
    out = subprocess.run(["srljax-train", "--config", "cartpole", "--set", "total_env_steps=20000", "--run-dir",
                          str(run_dir), "--quiet"], cwd=installed["cwd"], env=installed["env"], capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (run_dir / "summary.json").is_file() and list(run_dir.glob("events.out.tfevents.*"))
    bad = subprocess.run(["srljax-evaluate", "--run-dir", str(installed["cwd"] / "nothing")], cwd=installed["cwd"],
                         env=installed["env"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("srljax-evaluate: error:") and "no config.json" in bad.stderr

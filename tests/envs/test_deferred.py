"""gymnax imported without its plotting libraries, which load on first use (srljax.envs.deferred)."""
import subprocess
import sys

CHECK = """
import sys, types
from srljax.envs.deferred import import_gymnax
gymnax = import_gymnax()
env, params = gymnax.make("Pong-misc")
assert "pandas" not in sys.modules and "scipy.stats" not in sys.modules, "seaborn was imported"
assert type(sys.modules["seaborn"]).__name__ == "_StandIn"
import seaborn
assert len(seaborn.color_palette("cubehelix", 3)) == 3              # the first read imports it
assert type(sys.modules["seaborn"]) is types.ModuleType and "pandas" in sys.modules
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
assert type(sys.modules["matplotlib.pyplot"]) is types.ModuleType
import seaborn as again
assert again is sys.modules["seaborn"] and again.color_palette is seaborn.color_palette
print("OK")
"""

ALREADY = """
import sys
import seaborn
from srljax.envs.deferred import import_gymnax
import_gymnax()
assert sys.modules["seaborn"] is seaborn          # a module already imported is left alone
print("OK")
"""


def _python(code, env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_gymnax_loads_seaborn_and_pyplot_on_first_use_only(subprocess_env):
    for code in (CHECK, ALREADY):
        proc = _python(code, subprocess_env)
        assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stderr[-3000:]

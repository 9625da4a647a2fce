"""The benchmark suite runs at tiny sizes and writes well-formed outputs.
Timing never decides a test: only structure is checked."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_quick_outputs(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench.py"), "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "results.json").read_text())
    machine, rows = data["machine"], data["rows"]
    assert {"cpu", "threads", "torch", "cpu_kernel_isa", "command"} <= set(machine)
    phases = {(r["phase"], r["impl"]) for r in rows}
    for phase in ("forward", "backward", "forward+backward"):
        assert (phase, "artderiv") in phases and (phase, "native") in phases and (phase, "eager_recipe") in phases
    assert ("copy", "copy") in phases
    for r in rows:
        assert r["seconds"] > 0 and r["GBps"] > 0 and len(r["times"]) == 2
        if r["impl"] == "artderiv":
            assert set(r["ratios"]) >= {"native", "eager_recipe"}
            for q in r["ratios"].values():
                assert q["median"] > 0 and q["spread"] >= 0
    md = (tmp_path / "results.md").read_text()
    assert md.startswith("Machine:") and "| artderiv |" not in md.splitlines()[0]
    assert "relu:sigmoid" in proc.stdout


def test_gpu_check_script_is_valid_bash():
    subprocess.run(["bash", "-n", os.path.join(ROOT, "benchmarks", "gpu_check.sh")], check=True)


def test_gpu_check_test_stage_selection():
    """The GPU run's test stage (its -k expression, read from the script) collects
    every test of test_cuda.py and nothing else: the CPU emulation of the CUDA
    code (two host compiles) and the ptxas report (an nvcc compile) would eat
    the stage's minutes."""
    import re
    import shlex

    script = open(os.path.join(ROOT, "benchmarks", "gpu_check.sh")).read()
    line = next(l for l in script.splitlines() if l.strip().startswith("stage tests") and "--junitxml" in l)
    expr = shlex.split(line)[shlex.split(line).index("-k") + 1]

    def collect(*args):
        proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return {l for l in proc.stdout.splitlines() if "::" in l}

    selected = collect("tests", "-k", expr)
    assert selected and selected == collect(os.path.join("tests", "test_cuda.py")), sorted(selected)[:5]
    assert not any(re.search("emulat|codegen", t) for t in selected)

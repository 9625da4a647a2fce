"""The benchmark suite runs at tiny sizes and writes well-formed outputs.
Timing never decides a test: only structure is checked."""

import json
import os
import platform
import shutil
import subprocess
import sys

import pytest

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
        assert {"artderiv", "native", "eager_recipe"} <= {i for p, i in phases if p == phase}
    # The A/A control (the native op timed twice) where targets read ratios to native.
    assert {p for p, i in phases if i == "native_again"} == {"forward", "backward"}
    assert ("copy", "copy") in phases
    for r in rows:
        assert r["seconds"] > 0 and r["GBps"] > 0 and len(r["times"]) == 2
        if r["impl"] == "artderiv":
            assert set(r["ratios"]) >= {"native", "eager_recipe"}
            for q in r["ratios"].values():
                assert q["median"] > 0 and q["spread"] >= 0
        # The A/A control: the native op timed twice, its ratio to itself.
        assert ("ratio_to_native" in r) == (r["impl"] == "native_again")
        if r["impl"] == "native_again":
            native = next(n for n in rows if n["impl"] == "native" and
                          all(n[k] == r[k] for k in ("case", "dtype", "n", "regime", "phase")))
            ratios = sorted(a / b for a, b in zip(r["times"], native["times"]))
            assert r["ratio_to_native"]["median"] == pytest.approx(sum(ratios) / 2)
            assert r["ratio_to_native"]["spread"] == pytest.approx((ratios[1] - ratios[0]) / 2)
    md = (tmp_path / "results.md").read_text()
    assert md.startswith("Machine:") and "| artderiv |" not in md.splitlines()[0]
    assert "relu:sigmoid" in proc.stdout
    # The rows are also written cell by cell, for a run a timeout stops; the
    # target table reads them as it reads results.json.
    partial = tmp_path / "rows_kernel.jsonl"
    assert [json.loads(line) for line in partial.read_text().splitlines()] == rows
    summaries = [subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench.py"), "--summarize", str(path)],
                                cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
                                env=dict(os.environ, PYTHONPATH=ROOT)).stdout
                 for path in (partial, tmp_path / "results.json")]
    assert summaries[0] == summaries[1] and "| target |" in summaries[0]
    assert "| A/A: native again / native |" in summaries[0]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the kernel regime's settings are glibc's")
def test_kernel_regime_reuses_each_freed_output():
    """In the kernel regime's environment an op's output, freed before the
    next call, is where the next output goes. With glibc's per-thread cache
    on, this history of allocations makes artderiv.relu's outputs alternate
    between two addresses (and torch.relu's not): the comparison would then
    time the allocator's placement, not the kernels."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import bench

    script = (
        "import torch, artderiv\n"
        "x = torch.randn(1 << 20)\n"
        "for f in (torch.relu, torch.empty_like, artderiv.relu):\n"
        "    for _ in range(5):\n"
        "        f(x)\n"
        "addresses = [artderiv.relu(x).data_ptr() for _ in range(10)]\n"
        "print(len(set(addresses[2:])))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(bench.regime_env("kernel"), PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["1"], proc.stdout


@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_profile.sh"])
def test_gpu_scripts_are_valid_bash(script):
    subprocess.run(["bash", "-n", os.path.join(ROOT, "benchmarks", script)], check=True)


def _cuda_home():
    return next((h for h in (os.environ.get("CUDA_HOME"), "/usr/local/cuda")
                 if h and os.path.exists(os.path.join(h, "bin", "nvcc"))), None)


def test_gpu_profile_dry_run(tmp_path):
    """gpu_profile.sh without a GPU runs its ncu driver on the CPU: every op it
    names runs, in the order the profile's rows will have."""
    env = dict(os.environ, GPU_CHECK_DRY="1", PYTHON=sys.executable, CUDA_HOME=_cuda_home() or "/usr/local/cuda")
    proc = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu_profile.sh"), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "=== ncu_driver: rc=0" in (tmp_path / "profile_summary.txt").read_text()
    kernels = [l for l in (tmp_path / "ncu_driver.log").read_text().splitlines() if l.startswith("kernel ")]
    assert len(kernels) == 14 and kernels[-1] == "kernel 13: artderiv relu:sigmoid backward bfloat16", kernels


def test_launch_sweep_compiles(tmp_path):
    """benchmarks/cuda_launch_sweep.cu (gpu_check.sh's sweep stage) compiles
    against csrc's CUDA kernels with the flags that stage uses. (Not named
    after CUDA: the GPU check's test stage selects those names.)"""
    cuda_home = _cuda_home()
    if cuda_home is None:
        pytest.skip("no nvcc: the sweep cannot be compiled on this machine")
    script = open(os.path.join(ROOT, "benchmarks", "gpu_check.sh")).read()
    assert 'timeout 240 bash -c "$SWEEP_BUILD" > "$SWEEP_COMPILE_LOG" 2>&1 &' in script
    from torch.utils import cpp_extension

    cmd = [os.path.join(cuda_home, "bin", "nvcc"), "-O3", "-std=c++20", "-gencode=arch=compute_90,code=sm_90",
           "-Icsrc", *(f"-I{p}" for p in cpp_extension.include_paths()), *cpp_extension.COMMON_NVCC_FLAGS,
           "benchmarks/cuda_launch_sweep.cu", "-o", str(tmp_path / "sweep")]
    # The script's SWEEP_BUILD has the same flags (and computes the same includes
    # and torch's nvcc flags).
    flags = " ".join(cmd[1:5])
    assert f'SWEEP_BUILD="$CUDA_HOME/bin/nvcc {flags} ' in script, flags
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "sweep").exists()


def test_gpu_check_test_stage_selection():
    """The GPU run's test stage (its -k expression, read from the script) collects
    every test of test_cuda.py and nothing else: the CPU emulation of the CUDA
    code (two host compiles) and the ptxas report (an nvcc compile) would eat
    the stage's minutes."""
    import re
    import shlex

    script = open(os.path.join(ROOT, "benchmarks", "gpu_check.sh")).read()
    line = next(l for l in script.splitlines() if l.strip().startswith("stage tests") and " -k " in l)
    expr = shlex.split(line)[shlex.split(line).index("-k") + 1]

    def collect(*args):
        proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return {l for l in proc.stdout.splitlines() if "::" in l}

    selected = collect("tests", "-k", expr)
    assert selected and selected == collect(os.path.join("tests", "test_cuda.py")), sorted(selected)[:5]
    assert not any(re.search("emulat|codegen", t) for t in selected)


def _cpu_has(flag):
    try:
        with open("/proc/cpuinfo") as f:
            return flag in f.read().split()
    except OSError:
        return False


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64") or shutil.which("g++") is None,
                    reason="x86-64 harnesses, built with g++")
def test_standalone_loop_harnesses_build_and_run(tmp_path):
    """benchmarks/block_loops.cpp (the kernels' inner loops against csrc/, with
    torch's headers) and loop_alignment.cpp (no torch) build with the commands
    their comments give, and print a line per loop."""
    import torch

    torch_dir = os.path.dirname(torch.__file__)
    block_loops = tmp_path / "block_loops"
    subprocess.run(["g++", "-O3", "-std=c++20", "-ffp-contract=off", "-mavx2", "-mfma", "-mf16c", "-mbmi2",
                    "-falign-loops=64", f"-I{torch_dir}/include", f"-I{torch_dir}/include/torch/csrc/api/include",
                    f"-I{ROOT}/csrc", os.path.join(ROOT, "benchmarks", "block_loops.cpp"), "-o", str(block_loops),
                    f"-L{torch_dir}/lib", "-lc10", "-ltorch_cpu", f"-Wl,-rpath,{torch_dir}/lib"],
                   check=True, timeout=600)
    loop_alignment = tmp_path / "loop_alignment"
    subprocess.run(["g++", "-O3", os.path.join(ROOT, "benchmarks", "loop_alignment.cpp"), "-o", str(loop_alignment)],
                   check=True, timeout=600)
    if not _cpu_has("avx2"):
        pytest.skip("built; running needs an AVX2 CPU")
    out = subprocess.run([str(block_loops), "100", "3"], capture_output=True, text=True, check=True, timeout=120).stdout
    lines = out.splitlines()
    assert len(lines) == 8 and all(l.endswith(" ns/value") and float(l.split()[-2]) >= 0 for l in lines), out
    assert {" ".join(l.split()[:3]) for l in lines} >= {"backward atan bfloat16", "forward relu float32"}
    out = subprocess.run([str(loop_alignment), "10", "3"], capture_output=True, text=True, check=True, timeout=120).stdout
    assert "b16" in out, out

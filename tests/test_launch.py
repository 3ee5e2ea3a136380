"""The cached launch path's start (sandbox/launch.py, docs/startup.md): what
it loads before the program runs, and how it fails when the chain cannot be
loaded while the program already runs."""
import marshal
import os
import site
import subprocess
import sys
import time
from pathlib import Path

from conftest import BACKEND_ARGS, ROOT, YAMA_RUN, tree_env, yama_run

FROM_CACHE = "plan: from the cache"

# Each of these costs the start of every run a fraction of a millisecond or
# more (docs/startup.md, "For developers"); the launch path needs none of them
# before the program runs.
NOT_BEFORE_THE_PROGRAM = ("__future__", "struct", "socket", "signal", "threading", "re",
                          "enum", "typing", "dataclasses", "importlib.metadata", "tomllib",
                          "click", "pyseccomp", "sandbox.cli", "sandbox.supervisor",
                          "sandbox.chain", "sandbox.modules", "sandbox.audit")


def test_the_launch_path_loads_only_what_it_needs_before_the_program_runs():
    """Everything the cached start imports before the program runs, as the
    command starts it (python3 -IS, the package and its dependencies on
    sys.path): none of the modules that cost milliseconds."""
    paths = [ROOT, *(p for p in site.getsitepackages() if os.path.isdir(p))]
    code = (f"import sys; sys.path[:0] = {paths!r}; "
            "import sandbox.launch, sandbox.spawn, sandbox.shield; "
            "print(' '.join(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True,
                       cwd="/", timeout=60)
    assert r.returncode == 0, r.stderr
    loaded = set(r.stdout.split())
    assert {"sandbox.launch", "sandbox.spawn", "sandbox._yama"} <= loaded
    assert sorted(loaded & set(NOT_BEFORE_THE_PROGRAM)) == []


def run(cache: Path, *args, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return yama_run("-v", *args, env=env, **kwargs)


def plan_path(result: subprocess.CompletedProcess) -> Path:
    line = next(line for line in result.stderr.splitlines() if FROM_CACHE in line)
    return Path(line.rsplit("(", 1)[1].rstrip(")"))


def test_a_chain_that_cannot_be_loaded_kills_the_program_from_the_cache(tmp_path):
    """The program runs before the chain is loaded; when loading fails, it is
    killed (fail closed: nobody would decide its calls), never left running
    unsupervised, and yama-run says why. The plan is the user's own (trusted):
    its chain names a module that does not exist, as a broken install would."""
    cache = tmp_path / "cache"
    marker = tmp_path / "survived"
    command = ["sh", "-c", f"sleep 3; touch {marker}"]
    assert "kept in" in run(cache, "--", *command, timeout=60).stderr
    marker.unlink()
    cached = run(cache, "--", *command, timeout=60)
    path = plan_path(cached)
    marker.unlink()
    plan = marshal.loads(path.read_bytes())
    plan["profile"]["chain"] = ["no_such_module"]
    path.write_bytes(marshal.dumps(plan))
    r = run(cache, "--", *command, timeout=60)
    assert FROM_CACHE in r.stderr, r.stderr
    assert "internal error in loading the supervisor" in r.stderr, r.stderr
    assert r.returncode == 128 + 9, r.stderr
    assert not marker.exists()


def test_a_run_from_the_cache_is_listed_with_its_profile(tmp_path):
    """--list-running shows the profile a cached start runs under (its name,
    and where each setting came from), as it shows a cold one's."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_RUNTIME_DIR": str(runtime)}
    args = ("--set", "ptrace.scope=2", "--", "sleep")
    assert "kept in" in yama_run("-v", *args, "0", env=env).stderr
    running = subprocess.Popen(
        [*YAMA_RUN, *BACKEND_ARGS, "-v", *args, "30"], env=tree_env(env),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        listed = []
        while not listed and time.monotonic() < deadline:
            out = yama_run("--list-running", env=env).stdout
            listed = [line.split() for line in out.splitlines() if line[:1].isdigit()]
            time.sleep(0.1)
        assert len(listed) == 1, out
        program, profile, state = listed[0][2:5]
        assert (program, profile, state) == ("sleep", "default", "running")
        shown = yama_run("--show-running", "sleep", env=env).stdout
        assert "ptrace.scope = 2  # --set" in shown, shown
    finally:
        running.terminate()
        _, err = running.communicate(timeout=30)
    assert FROM_CACHE in err, err

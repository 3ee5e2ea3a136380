"""Shared fixtures: run yama-run, build the C helper programs, and change
machine-wide sysctls only for the duration of one test."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HELPERS = Path(__file__).parent / "helpers"
YAMA_RUN = [sys.executable, "-m", "sandbox.cli"]
# Every yama-run a test starts runs this checkout's package, whatever its cwd
# (without it, `-m sandbox.cli` from another directory finds whichever
# `sandbox` the interpreter has installed).
_REPO = str(Path(__file__).resolve().parent.parent)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_REPO, os.environ.get("PYTHONPATH", "")) if p)

requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (setpriv, sysctl)")


def requires_tool(name: str):
    return pytest.mark.skipif(shutil.which(name) is None, reason=f"needs {name}")


# YAMA_RUN_TEST_BACKEND=ptrace (or notify) runs every yama_run() with that --backend.
TEST_BACKEND = os.environ.get("YAMA_RUN_TEST_BACKEND", "")
BACKEND_ARGS = ["--backend", TEST_BACKEND] if TEST_BACKEND else []


ROOT = str(Path(__file__).resolve().parent.parent)


def tree_env(env=None) -> dict:
    """The environment for running this tree's yama-run from any directory:
    without it, `python3 -m sandbox.cli` from another cwd imports whatever
    copy of the package is installed on the machine."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return env


# Every yama-run a test starts, from whatever directory, is this tree's.
os.environ["PYTHONPATH"] = tree_env()["PYTHONPATH"]


def _launcher_sources() -> list[Path]:
    """setup.py's LAUNCHER, read without running setup.py: one list of what
    the command is compiled from."""
    tree = ast.parse((Path(ROOT) / "setup.py").read_text())
    value = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", None) == "LAUNCHER" for t in node.targets))
    return [Path(ROOT) / name for name in ast.literal_eval(value)]


LAUNCHER_SOURCES = _launcher_sources()


def build_launcher(out: Path) -> Path:
    """The command, compiled from this checkout as setup.py compiles it."""
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-o", str(out),
                    f"-I{ROOT}/csrc", *map(str, LAUNCHER_SOURCES)], check=True,
                   capture_output=True)
    return out


def venv_around_checkout(venv: Path) -> Path:
    """VENV/bin/python3 is this interpreter; VENV/pyvenv.cfg makes it a venv's;
    its site-packages names this checkout in yama-run's editable .pth file, as
    `pip install -e` writes it in strict mode (a directory line: bin/yama-run.py
    reads that file only when the package is not in site-packages), and the
    interpreter's own site-packages (cffi, pyseccomp, click) in another .pth
    file (sandbox/entry.py adds the directories such files name). VENV/bin
    must hold the launcher already."""
    import site
    python = Path(os.path.realpath(sys.executable))
    (venv / "bin" / "python3").unlink(missing_ok=True)
    (venv / "bin" / "python3").symlink_to(python)
    shutil.copy(Path(ROOT) / "bin" / "yama-run.py", venv / "bin" / "yama-run.py")
    (venv / "pyvenv.cfg").write_text(f"home = {python.parent}\n")
    packages = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    packages.mkdir(parents=True, exist_ok=True)
    (packages / "__editable__.yama_run-0.1.0.pth").write_text(ROOT + "\n")
    paths = [p for p in site.getsitepackages() if os.path.isdir(p)]
    (packages / "paths.pth").write_text("# names directories only\n" + "\n".join(paths) + "\n")
    return venv


@pytest.fixture
def open_dir() -> Path:
    """A directory every uid may pass through (pytest's tmp_path is root's
    alone), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="yama-run-open-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """VENV/bin/yama-run as a user's install runs it: the launcher, which is
    the front, and this checkout's Python part under this interpreter."""
    if shutil.which("cc") is None:
        pytest.skip("needs cc to build the command")
    venv = tmp_path_factory.mktemp("installed")
    venv.chmod(0o755)
    (venv / "bin").mkdir()
    build_launcher(venv / "bin" / "yama-run")
    venv_around_checkout(venv)
    return venv / "bin" / "yama-run"


def yama_run(*args, check=False, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    """Run yama-run with args; text output captured unless told otherwise."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs["env"] = tree_env(kwargs.get("env"))
    return subprocess.run([*YAMA_RUN, *BACKEND_ARGS, *map(str, args)], check=check,
                          timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def helper(tmp_path_factory):
    """helper("name") compiles tests/helpers/name.c once and returns its path."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to build the helper programs")
    out = tmp_path_factory.mktemp("helpers")
    out.chmod(0o755)
    built: dict[str, str] = {}

    def build(name: str, *flags: str) -> str:
        key = " ".join((name, *flags))
        if key not in built:
            exe = out / (name + "".join(f.replace("-", "_") for f in flags))
            subprocess.run(["gcc", "-O1", "-Wall", "-pthread", *flags, "-o", str(exe),
                            str(HELPERS / f"{name}.c")], check=True)
            built[key] = str(exe)
        return built[key]

    return build


def public_copy(built: str, name: str) -> tuple[str, str]:
    """(a copy of the program built, the directory it is in), where every uid
    may run it: pytest's own directories are 0700 root, which setpriv gets
    through (it execs before the capabilities go) but unshare, or a yama-run
    started by another uid, does not. The directory is the caller's to remove."""
    where = tempfile.mkdtemp(prefix=f"yama-run-{name}-")
    os.chmod(where, 0o755)
    exe = os.path.join(where, name)
    shutil.copy2(built, exe)
    os.chmod(exe, 0o755)
    return exe, where


@pytest.fixture
def fifo_without_writer():
    """A FIFO every uid may open, which nobody writes: an open of it for
    reading waits, in a worker thread the supervisor starts for it (the pid
    reuse races make it take a number that way)."""
    d = Path(tempfile.mkdtemp(prefix="yr-fifo-", dir="/tmp"))
    d.chmod(0o755)
    fifo = d / "fifo"
    os.mkfifo(fifo, 0o666)
    fifo.chmod(0o666)
    yield fifo
    shutil.rmtree(d, ignore_errors=True)


# The pid-reuse races wrap the pid space once a try: at the machine's 32,768
# numbers a try takes about 2 s, at 4,096 a quarter of a second.
SMALL_PID_MAX = 4096


@pytest.fixture
def small_pid_space(sysctl):
    """kernel.pid_max at SMALL_PID_MAX for the test (restored after it), for
    a harness that wraps the pid space to have a number taken again."""
    if int(Path("/proc/sys/kernel/pid_max").read_text()) > SMALL_PID_MAX:
        sysctl("kernel.pid_max", SMALL_PID_MAX)


@pytest.fixture
def sysctl():
    """sysctl(name, value): set a machine-wide knob, restored after the test."""
    saved: dict[str, str] = {}

    def set_(name: str, value) -> None:
        path = Path("/proc/sys") / name.replace(".", "/")
        if os.geteuid() != 0:
            pytest.skip(f"needs root to set {name}")
        if name not in saved:
            saved[name] = path.read_text().strip()
        path.write_text(f"{value}\n")

    try:
        yield set_
    finally:
        for name, value in saved.items():
            (Path("/proc/sys") / name.replace(".", "/")).write_text(f"{value}\n")

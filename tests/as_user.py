"""Run yama-run itself as an ordinary user (uid 1001), as people use it.

The interpreter that runs the tests may live where uid 1001 cannot read
(CI's is under /root), so a copy of yama-run and of what it imports is made
in a directory every uid can read, and run by the system's python3 of the
same version. Tests that need it skip with a reason where it cannot be had."""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

UID = 1001
AS_USER = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
REPO = Path(__file__).resolve().parent.parent
DEPENDENCIES = ("click", "pyseccomp", "_cffi_backend", "ptrace")
SYSTEM_PYTHON = "/usr/bin/python3"


def _copy_module(name: str, into: Path) -> None:
    module = importlib.import_module(name)
    source = Path(module.__file__)
    if source.name == "__init__.py":
        shutil.copytree(source.parent, into / source.parent.name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(source, into / source.name)


def why_not() -> str | None:
    """Why yama-run cannot be run as uid 1001 here, or None."""
    if os.geteuid() != 0:
        return "needs root to become uid 1001 (setpriv)"
    if shutil.which("setpriv") is None:
        return "needs setpriv"
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"needs {SYSTEM_PYTHON}"
    version = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.strip()
    if version != str(tuple(sys.version_info[:2])):
        return f"{SYSTEM_PYTHON} is {version}, not the tests' {sys.version_info[:2]}"
    return None


class UserRun:
    """yama-run as uid 1001, with a home and state directory of its own."""

    def __init__(self, root: Path):
        self.root = root
        self.home = root / "home"
        self.path = root / "lib"

    def prepare(self) -> None:
        self.path.mkdir(parents=True)
        for name in DEPENDENCIES:
            try:
                _copy_module(name, self.path)
            except ImportError:
                pass                            # ptrace: only for --backend ptrace
        for package in ("sandbox", "profiles"):
            shutil.copytree(REPO / package, self.path / package,
                            ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(REPO / "pyproject.toml", self.path)    # a checkout: its own profiles
        self.home.mkdir()
        os.chown(self.home, UID, UID)
        subprocess.run(["chmod", "-R", "a+rX", str(self.root)], check=True)

    def env(self, extra: dict | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "PYTHON"))}
        env.update(HOME=str(self.home), PYTHONPATH=str(self.path), PYTHONDONTWRITEBYTECODE="1")
        env.update(extra or {})
        return env

    def command(self, *args) -> list[str]:
        return [*AS_USER, SYSTEM_PYTHON, "-m", "sandbox.cli", *map(str, args)]

    def run(self, *args, timeout=60, env=None, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("cwd", str(self.home))
        return subprocess.run(self.command(*args), env=self.env(env), timeout=timeout,
                              **kwargs)


@pytest.fixture(scope="session")
def as_user():
    """UserRun: yama-run started by uid 1001 (skips where it cannot be)."""
    reason = why_not()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="yama-run-user-"))
    os.chmod(root, 0o755)
    user = UserRun(root)
    user.prepare()
    yield user
    shutil.rmtree(root, ignore_errors=True)

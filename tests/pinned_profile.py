"""The profile the hostile, load and fuzz tests run under: a contained sandbox
(Landlock's domain where the kernel has it), ptrace (scope 1) and hardlinks,
written here, since the bundled default profile may chain more modules than
these tests are about."""
from __future__ import annotations

import atexit
import os
import tempfile

from conftest import YAMA_RUN, yama_run


def _write() -> str:
    fd, path = tempfile.mkstemp(prefix="yama-run-pinned-", suffix=".toml")
    os.write(fd, b'chain = ["contain", "ptrace", "hardlinks"]\n\n[contain]\nenabled = true\n\n'
                 b'[ptrace]\nscope = 1\n\n[hardlinks]\nprotected = 1\n')
    os.close(fd)
    os.chmod(path, 0o644)
    atexit.register(os.unlink, path)
    return path


PROFILE = _write()
YR = [*YAMA_RUN, "--profile", PROFILE]


def yr(*args, **kwargs):
    """yama-run with the pinned profile (conftest.yama_run otherwise)."""
    return yama_run("--profile", PROFILE, *args, **kwargs)

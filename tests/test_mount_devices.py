"""A block filesystem's device named in its options, through a stranger's link.

ext4 takes its external journal's device by path (journal_path), and the
kernel looks it up when the option is parsed, following a trailing link as
fs.protected_symlinks says: root is not exempt, and a stranger's link in
/tmp naming the journal device is refused (the kernel says EINVAL for every
journal_path it cannot use). Under yama-run, with the kernel's knob off, the
link was followed and the filesystem mounted with the journal the link's
owner chose (replayed onto root's filesystem at the mount). Now the options
of a block filesystem's mount(2) and fsconfig's device keys
(FSCONFIG_SET_STRING, and FSCONFIG_SET_PATH, now routed) are walked and
judged (csrc/named.c): refused, EACCES, said by the symlinks module.
btrfs's device option: tests/test_parity_routes.py (parity with the kernel,
as uid 1001 too). Root only: loop devices and mkfs.

Each case runs in a mount namespace of its own (tests/helpers/parity_probe.c),
so nothing it mounts outlives it."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import requires_root, yama_run

pytestmark = requires_root

CASES = ["mount_opts ext4 {fs} {mnt} journal_path={link}",
         "fsconfig_on ext4 string journal_path {link}",
         "fsconfig_on ext4 path journal_path {link}"]


@pytest.fixture(scope="module")
def devices():
    """(ext4 device, its journal device, a mountpoint, uid 1002's link to the
    journal device in a sticky world-writable directory)."""
    for tool in ("losetup", "mke2fs"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    top = Path(tempfile.mkdtemp(prefix="yr-mountdev-", dir="/tmp"))
    top.chmod(0o755)
    loops = []
    try:
        for name, size in (("journal.img", 16), ("fs.img", 64)):
            image = top / name
            with open(image, "wb") as f:
                f.truncate(size << 20)
            r = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True,
                               text=True)
            if r.returncode != 0:
                pytest.skip(f"no loop device: {r.stderr.strip()}")
            loops.append(r.stdout.strip())
        journal, fs = loops
        subprocess.run(["mke2fs", "-q", "-F", "-O", "journal_dev", "-b", "4096", journal],
                       check=True)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-J",
                        f"device={journal}", fs], check=True)
        sticky = top / "sticky"
        sticky.mkdir(mode=0o1777)
        sticky.chmod(0o1777)
        link = sticky / "jlink"
        os.symlink(journal, link)
        os.lchown(link, 1002, 1002)
        (top / "mnt").mkdir()
        yield fs, journal, top / "mnt", link
    finally:
        for loop in loops:
            subprocess.run(["losetup", "-d", loop], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


def _cases(devices) -> str:
    fs, _, mnt, link = devices
    return "".join(f"c{i} {c.format(fs=fs, mnt=mnt, link=link)}\n" for i, c in enumerate(CASES))


def _results(out: str) -> list[str]:
    got = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    return [got.get(f"c{i}", "missing") for i in range(len(CASES))]


@pytest.fixture(scope="module")
def probe(helper):
    return helper("parity_probe")


def test_natively_the_knob_refuses_and_without_it_the_link_is_followed(devices, probe,
                                                                       sysctl):
    """The control: at 1 the kernel refuses each (EINVAL: ext4's answer for a
    journal_path it cannot look up); at 0 it follows the link, and the
    filesystem mounts with the link's journal."""
    sysctl("fs.protected_symlinks", 1)
    at_1 = subprocess.run([probe], input=_cases(devices), capture_output=True, text=True,
                          timeout=60).stdout
    sysctl("fs.protected_symlinks", 0)
    at_0 = subprocess.run([probe], input=_cases(devices), capture_output=True, text=True,
                          timeout=60).stdout
    assert _results(at_1) == ["EINVAL"] * 3, at_1
    assert _results(at_0) == ["ok"] * 3, at_0


def test_the_journal_behind_a_strangers_link_is_never_used(devices, probe, sysctl, tmp_path):
    """Under yama-run (the knob off): each is refused before the kernel sees
    it, and the audit log names the mount and the link."""
    sysctl("fs.protected_symlinks", 0)
    log = tmp_path / "audit.jsonl"
    r = yama_run("--audit-log", log, "--", probe, input=_cases(devices), timeout=60)
    assert _results(r.stdout) == ["EACCES"] * 3, r.stdout + r.stderr
    text = log.read_text()
    assert text.count('"module": "symlinks"') == 3 and "jlink" in text, text

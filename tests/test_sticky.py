"""fifos and regular: fs.protected_fifos / fs.protected_regular re-created per
sandbox (may_create_in_sticky, KERNEL-SEMANTICS.md 4).

Same design as test_symlinks.py: one batch of path_probe cases runs as uid
1001, uid 1002 and root, natively with the kernel's fs.protected_fifos and
fs.protected_regular at the level under test, and under yama-run with both
sysctls 0 and `--set fifos.protected=L --set regular.protected=L` (C fast
path and YAMA_RUN_NO_FAST_PATH=1); every result line must be equal. The native
results are checked against the rule first.

The tree: sticky/ (1777 root), gsticky/ (1775 root:1000, sticky and
group-writable only), ustick/ (1777 uid 1001), gustick/ (1775 1001:1000), ww/
(0777, not sticky); in each, an empty 0666 regular file and a 0666 FIFO owned
by root, 1001 and 1002; a character device (1:3, /dev/null) owned by 1002 in
sticky/ and gsticky/ (the kernel refuses O_CREAT of it in a world-writable
sticky directory whatever the sysctls: yama-run must not change that).
"""
from __future__ import annotations

import json
import os
import shutil

import pytest

from conftest import requires_root, yama_run
from helpers.pathcases import (IDENTITIES, MODES, UIDS, Tree, differences, result_word,
                               retried_if_knobs_changed, run_native, run_sandboxed,
                               while_set, with_profile, without_flags)

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")]

OWNERS = {"root": 0, "1001": 1001, "1002": 1002}
DIRS = {  # name -> (mode, uid, gid)
    "sticky": (0o1777, 0, 0), "gsticky": (0o1775, 0, 1000),
    "ustick": (0o1777, 1001, 1001), "gustick": (0o1775, 1001, 1000), "ww": (0o777, 0, 0)}
LEVELS = [(0, 0), (1, 1), (2, 2), (1, 2)]      # (fifos, regular)


def BUG(reason: str):
    return pytest.mark.xfail(reason=f"BUG: {reason}", strict=True)


@pytest.fixture(scope="module")
def tree(helper):
    t = Tree("yr-sticky-", helper("path_probe"))
    for d, (mode, uid, gid) in DIRS.items():
        t.dir(d, mode, uid, gid)
        for owner, ouid in OWNERS.items():
            t.file(f"{d}/{owner}_reg", 0o666, ouid, ouid)
            t.fifo(f"{d}/{owner}_fifo", 0o666, ouid, ouid)
    for d in ("sticky", "gsticky"):
        os.mknod(t.top / d / "1002_chr", 0o20666, os.makedev(1, 3))
        os.chown(t.top / d / "1002_chr", 1002, 1002)
        os.chmod(t.top / d / "1002_chr", 0o666)          # mknod obeys the umask
    # a device whose open may wait (not a memory device: opened by a worker)
    os.mknod(t.top / "sticky" / "1002_misc", 0o20666, os.makedev(10, 232))
    os.chown(t.top / "sticky" / "1002_misc", 1002, 1002)
    os.chmod(t.top / "sticky" / "1002_misc", 0o666)
    t.file("sticky/1002_ro", 0o644, 1002, 1002)
    t.dir("sticky/1002_dir", 0o777, 1002, 1002)
    t.link("sticky/l1001_to_1002_reg", "1002_reg", 1001)      # my link, other's file
    t.link("ww/l1002_to_sticky_reg", "../sticky/1002_reg", 1002)
    t.link("sticky/l1001_to_ww_reg", "../ww/1002_reg", 1001)
    t.link("ww/l1002_to_sticky_fifo", "../sticky/1002_fifo", 1002)
    t.prime_atimes()
    yield t
    t.remove()


# -- the rule (the kernel's, to check the native runs) ----------------------------------

def rule_denies(dirname: str, owner: str, kind: str, ident: str, level: tuple) -> bool:
    mode, duid, _ = DIRS[dirname]
    if not mode & 0o1000:
        return False
    lfifo, lreg = level
    if (kind == "reg" and lreg == 0) or (kind == "fifo" and lfifo == 0):
        return False
    if OWNERS[owner] in (duid, UIDS[ident]):
        return False
    if mode & 0o002:
        return True
    if mode & 0o020:
        return (kind == "fifo" and lfifo >= 2) or (kind == "reg" and lreg >= 2)
    return False


# -- the cases ---------------------------------------------------------------------

# name -> (template, kind, the rule applies?)
OPENS = {
    "open O_RDWR|O_CREAT": ("open {p} RDWR|CREAT 0644", "reg", True),
    "open O_RDONLY|O_CREAT": ("open {p} RDONLY|CREAT 0644", "reg", True),
    "open O_WRONLY|O_CREAT|O_TRUNC": ("open {p} WRONLY|CREAT|TRUNC 0644", "reg", True),
    "open O_CREAT|O_APPEND|O_CLOEXEC": ("open {p} WRONLY|CREAT|APPEND|CLOEXEC 0644", "reg",
                                         True),
    "open O_CREAT|O_EXCL": ("open {p} RDWR|CREAT|EXCL 0644", "reg", False),   # EEXIST first
    "open O_RDWR": ("open {p} RDWR", "reg", False),                            # no O_CREAT
    "open O_PATH|O_CREAT": ("open {p} PATH|CREAT 0644", "reg", False),  # O_PATH drops O_CREAT
    "openat O_CREAT": ("openat CWD {p} RDWR|CREAT 0644", "reg", True),
    "openat dirfd O_CREAT": ("openat D:{d} {b} RDWR|CREAT 0644", "reg", True),
    "openat2 O_CREAT": ("openat2 CWD {p} RDWR|CREAT 0 0644", "reg", True),
    "creat": ("creat {p} 0644", "reg", True),
    "i386 open O_CREAT": ("i386:open {p} RDWR|CREAT 0644", "reg", True),
    "i386 openat O_CREAT": ("i386:openat CWD {p} RDWR|CREAT 0644", "reg", True),
    "i386 creat": ("i386:creat {p} 0644", "reg", True),
    "fifo O_RDONLY|O_NONBLOCK|O_CREAT": ("open {p} RDONLY|NONBLOCK|CREAT 0644", "fifo", True),
    "fifo O_RDWR|O_CREAT": ("open {p} RDWR|CREAT 0644", "fifo", True),
    "fifo O_WRONLY|O_NONBLOCK|O_CREAT": ("open {p} WRONLY|NONBLOCK|CREAT 0644", "fifo", True),
    "fifo openat2 O_CREAT": ("openat2 CWD {p} RDWR|CREAT 0 0644", "fifo", True),
    "fifo i386 open O_CREAT": ("i386:open {p} RDWR|CREAT 0644", "fifo", True),
    "fifo O_CREAT|O_EXCL": ("open {p} RDWR|CREAT|EXCL 0644", "fifo", False),
    "fifo O_RDONLY|O_NONBLOCK": ("open {p} RDONLY|NONBLOCK", "fifo", False),
}

# (label, case, rule: None (checked only for parity) or (dir, owner, kind))
SPECIAL = [
    ("device O_CREAT, world-writable sticky", "open sticky/1002_chr RDWR|CREAT 0644", None),
    ("device O_CREAT, group-writable sticky", "open gsticky/1002_chr RDWR|CREAT 0644", None),
    ("device without O_CREAT", "open sticky/1002_chr RDWR", None),
    ("read-only file O_RDONLY|O_CREAT", "open sticky/1002_ro RDONLY|CREAT 0644",
     ("sticky", "1002", "reg")),
    ("read-only file O_RDWR|O_CREAT", "open sticky/1002_ro RDWR|CREAT 0644", None),
    ("directory O_CREAT", "open sticky/1002_dir RDONLY|CREAT 0644", None),      # EISDIR
    ("my link to other's file", "open sticky/l1001_to_1002_reg RDWR|CREAT 0644", None),
    ("link from ww into sticky", "open ww/l1002_to_sticky_reg RDWR|CREAT 0644",
     ("sticky", "1002", "reg")),        # the directory checked is the final object's
    ("link from sticky to ww", "open sticky/l1001_to_ww_reg RDWR|CREAT 0644", None),
    ("fifo link from ww into sticky", "open ww/l1002_to_sticky_fifo RDWR|CREAT 0644",
     ("sticky", "1002", "fifo")),
    ("new file in sticky", "open sticky/new_{id} WRONLY|CREAT 0640", None),
    ("new file in gsticky", "open gsticky/new_{id} WRONLY|CREAT 0640", None),
    ("new file O_EXCL in sticky", "open sticky/new_{id} WRONLY|CREAT|EXCL 0640", None),
    ("trailing slash O_CREAT", "open sticky/1002_reg/ RDWR|CREAT 0644", None),
    ("dotdot", "open sticky/../sticky/1002_reg RDWR|CREAT 0644", ("sticky", "1002", "reg")),
    ("O_CREAT|O_DIRECTORY", "open sticky/1002_reg RDWR|CREAT|DIRECTORY 0644", None),
]


def build_cases(level):
    """-> (cases, groups {name: [ids]}, denied {id: identities the rule denies or None})"""
    cases, groups, denied = [], {}, {}
    n = 0

    def add(group, line, deny):
        nonlocal n
        n += 1
        cid = f"c{n}"
        cases.append((cid, line.replace("{id}", cid)))
        groups.setdefault(group, []).append(cid)
        denied[cid] = deny
        if "new_" in line:             # remove what the case created
            cases.append((f"~{cid}", f"unlink {line.split()[1].replace('{id}', cid)}"))

    for name, (template, kind, applies) in OPENS.items():
        for d in DIRS:
            for owner in OWNERS:
                path = f"{d}/{owner}_{kind}"
                dd, _, b = path.rpartition("/")
                deny = {i for i in IDENTITIES
                        if applies and rule_denies(d, owner, kind, i, level)}
                add(name, template.format(p=path, d=dd, b=b), deny)
    for label, line, rule in SPECIAL:
        deny = None if rule is None else {i for i in IDENTITIES
                                          if rule_denies(*rule, i, level)}
        add(f"path: {label}", line, deny)
    return cases, groups, denied


def native_knobs(level) -> dict:
    return {"fs.protected_symlinks": 1, "fs.protected_fifos": level[0],
            "fs.protected_regular": level[1]}


OFF_KNOBS = {f"fs.protected_{name}": 0 for name in ("symlinks", "fifos", "regular")}


def off_sysctls(sysctl):
    for name, value in OFF_KNOBS.items():
        sysctl(name, value)


def module_options(level):
    return ("--set", "symlinks.protected=1", "--set", f"fifos.protected={level[0]}",
            "--set", f"regular.protected={level[1]}")


_RUNS: dict = {}


def results(tree, sysctl, level, ident, how):
    key = (level, ident, how)
    if key not in _RUNS:
        cases, _, _ = build_cases(level)
        if how == "native":
            _RUNS[key] = while_set(sysctl, native_knobs(level),
                                   lambda: run_native(tree, cases, ident))
        else:
            got, proc = while_set(sysctl, OFF_KNOBS, lambda: run_sandboxed(
                tree, cases, ident, module_options(level), how))
            assert got, f"no results under yama-run (rc {proc.returncode}): {proc.stderr[-2000:]}"
            _RUNS[key] = got
    return _RUNS[key]


# Defects of yama-run found by these tests (checked by hand against the walk
# branch): group -> (reason, when(level, ident, mode)). Strict: a fix XPASSes.
# (All those found so far were fixed on the walk branch: see git history.)
GAPS: dict = {}
_, _GROUPS, _ = build_cases((1, 1))
LEVEL_IDS = [f"fifos{f}-regular{r}" for f, r in LEVELS]


@pytest.mark.parametrize("ident", list(IDENTITIES))
@pytest.mark.parametrize("level", LEVELS, ids=LEVEL_IDS)
@pytest.mark.parametrize("group", list(_GROUPS))
def test_kernel_rule_natively(tree, sysctl, group, level, ident):
    cases, groups, denied = build_cases(level)
    native = results(tree, sysctl, level, ident, "native")
    wrong = []
    for cid in groups[group]:
        if denied[cid] is None:
            continue
        got = result_word(native[cid])
        if (got == "EACCES") != (ident in denied[cid]):
            wrong.append(f"{dict(cases)[cid]!r}: native {got}")
    assert not wrong, "\n".join(wrong)


def _marks(group, level, ident, mode):
    if group in GAPS and GAPS[group][1](level, ident, mode):
        return [BUG(GAPS[group][0])]
    return []


@pytest.mark.parametrize("group,level,ident,mode", [
    pytest.param(g, lv, i, m, id=f"{g}-{lid}-{i}-{m}", marks=_marks(g, lv, i, m))
    for g in _GROUPS for lv, lid in zip(LEVELS, LEVEL_IDS) for i in IDENTITIES for m in MODES])
def test_parity(tree, sysctl, group, level, ident, mode):
    cases, groups, _ = build_cases(level)
    native = results(tree, sysctl, level, ident, "native")
    sandboxed = results(tree, sysctl, level, ident, mode)
    mine = [(cid, line) for cid, line in cases if cid in groups[group]]
    diff = differences(mine, native, sandboxed, flags=False)
    assert not diff, "\n".join(diff)


@retried_if_knobs_changed
def test_device_nodes_keep_the_kernel_quirk(tree, sysctl):
    """O_CREAT of someone else's device node in a world-writable sticky
    directory is EACCES from the kernel even with both sysctls 0; yama-run with
    both modules off neither adds nor removes anything."""
    off_sysctls(sysctl)
    cases = [("a", "open sticky/1002_chr RDWR|CREAT 0644"), ("b", "open sticky/1002_chr RDWR"),
             ("c", "open gsticky/1002_chr RDWR|CREAT 0644")]
    want = run_native(tree, cases, "1001")
    assert [result_word(want[c]) for c in "abc"] == ["EACCES", "ok", "ok"]
    got, proc = run_sandboxed(tree, cases, "1001", ("--set", "fifos.protected=0",
                                                    "--set", "regular.protected=0"))
    assert {k: without_flags(v) for k, v in got.items()} == \
        {k: without_flags(v) for k, v in want.items()}, proc.stderr


@retried_if_knobs_changed
def test_an_open_that_may_wait_keeps_the_kernel_rule(tree, sysctl):
    """The same for a device whose open may wait, which a worker opens again
    from the held descriptor (where the kernel sees no O_CREAT: it was
    opened, whatever the sysctls, before), and for a FIFO opened read-only
    with O_CREAT under the kernel's own fifos=2 left to the kernel ("auto"):
    refused at once, never waiting."""
    off_sysctls(sysctl)
    cases = [("a", "open sticky/1002_misc RDONLY|CREAT 0644"),
             ("b", "open gsticky/1002_fifo RDONLY|CREAT 0644")]
    sysctl("fs.protected_fifos", 2)
    want = run_native(tree, cases, "1001")
    assert [result_word(want[c]) for c in "ab"] == ["EACCES", "EACCES"]
    for mode in MODES:
        got, proc = run_sandboxed(tree, cases, "1001", ("--set", "fifos.protected=auto"), mode,
                                  timeout=30)
        assert [result_word(got.get(c, "")) for c in "ab"] == ["EACCES", "EACCES"], proc.stderr


# -- audit, -v, permissive, auto ------------------------------------------------------

def _audit(tree, cases, ident="1001", options=(), mode="fast"):
    log = tree.top / "audit.jsonl"
    log.unlink(missing_ok=True)
    got, proc = run_sandboxed(tree, cases, ident, ("--audit-log", str(log), *options), mode)
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    log.unlink(missing_ok=True)
    return got, proc, records


@pytest.mark.parametrize("mode", MODES)
@retried_if_knobs_changed
def test_denials_are_audited(tree, sysctl, mode):
    off_sysctls(sysctl)
    cases = [("a", "open sticky/1002_reg RDWR|CREAT 0644"),
             ("b", "openat CWD sticky/1002_fifo RDWR|CREAT 0644"),
             ("c", "openat2 CWD gsticky/1002_reg RDWR|CREAT 0 0644"),
             ("d", "creat sticky/root_reg 0644"),     # the directory's owner: allowed
             ("e", "open sticky/1002_reg RDWR")]      # no O_CREAT: allowed
    got, proc, records = _audit(tree, cases, options=module_options((2, 2)), mode=mode)
    assert [result_word(got.get(c, "")) for c in "abcde"] == \
        ["EACCES", "EACCES", "EACCES", "ok", "ok"], proc.stderr
    assert [(r["module"], r["hook"], r["syscall"], r["errno"], r["action"], r["path"])
            for r in records] == [
        ("regular", "create_in_sticky", "open", "EACCES", "deny", "sticky/1002_reg"),
        ("fifos", "create_in_sticky", "openat", "EACCES", "deny", "sticky/1002_fifo"),
        ("regular", "create_in_sticky", "openat2", "EACCES", "deny", "gsticky/1002_reg")]


@retried_if_knobs_changed
def test_permissive_performs_the_open(tree, sysctl):
    off_sysctls(sysctl)
    cases = [("a", "open sticky/1002_reg RDWR|CREAT 0644"),
             ("b", "open sticky/1002_fifo RDWR|CREAT 0644")]
    want = run_native(tree, cases, "1001")
    got, proc, records = _audit(tree, cases, options=("--permissive", *module_options((2, 2))))
    assert {k: without_flags(v) for k, v in got.items()} == \
        {k: without_flags(v) for k, v in want.items()}, proc.stderr
    assert result_word(got["a"]) == "ok"
    assert [(r["module"], r["action"]) for r in records] == [
        ("regular", "would-deny"), ("fifos", "would-deny")]


@pytest.mark.parametrize("module", ["fifos", "regular"])
@pytest.mark.parametrize("setting,kernel,line", [
    ("auto", 0, "level 2 enforced by yama-run (fs.protected_{m}=0)"),
    ("auto", 1, "level 2 enforced by yama-run (fs.protected_{m}=1)"),
    ("auto", 2, "level 2 enforced by the kernel (fs.protected_{m}=2)"),
    ("1", 2, "level 1 enforced by yama-run (fs.protected_{m}=2)"),
    ("2", 0, "level 2 enforced by yama-run (fs.protected_{m}=0)"),
    ("0", 2, "off"),
])
@retried_if_knobs_changed
def test_verbose_says_who_enforces(sysctl, module, setting, kernel, line):
    proc = while_set(sysctl, {f"fs.protected_{module}": kernel}, lambda: yama_run(
        *with_profile(["-v", "--set", f"{module}.protected={setting}"]), "--", "true"))
    assert proc.returncode == 0, proc.stderr
    mine = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"yama-run: {module}: ")
            and ("enforced" in ln or ln.endswith(": off"))]
    assert mine == [f"yama-run: {module}: " + line.format(m=module)], proc.stderr


@retried_if_knobs_changed
def test_auto_with_kernel_at_2_routes_nothing(tree, sysctl):
    """The kernel denies both cases; yama-run records nothing."""
    cases = [("a", "open sticky/1002_reg RDWR|CREAT 0644"),
             ("b", "open gsticky/1002_fifo RDWR|CREAT 0644")]
    got, proc, records = while_set(
        sysctl, {"fs.protected_fifos": 2, "fs.protected_regular": 2},
        lambda: _audit(tree, cases, options=("--set", "fifos.protected=auto",
                                             "--set", "regular.protected=auto")))
    assert [result_word(got.get(c, "")) for c in "ab"] == ["EACCES", "EACCES"], proc.stderr
    assert records == []


@retried_if_knobs_changed
def test_auto_with_kernel_at_1_adds_level_2(tree, sysctl):
    """The kernel (level 1) would allow the group-writable case: yama-run denies it."""
    cases = [("a", "open gsticky/1002_reg RDWR|CREAT 0644"),
             ("b", "open gsticky/1002_fifo RDWR|CREAT 0644"),
             ("c", "open gsticky/1001_reg RDWR|CREAT 0644")]
    got, proc, records = while_set(
        sysctl, {"fs.protected_fifos": 1, "fs.protected_regular": 1},
        lambda: _audit(tree, cases, options=("--set", "fifos.protected=auto",
                                             "--set", "regular.protected=auto")))
    assert [result_word(got.get(c, "")) for c in "abc"] == ["EACCES", "EACCES", "ok"], \
        proc.stderr
    assert [(r["module"], r["hook"]) for r in records] == [
        ("regular", "create_in_sticky"), ("fifos", "create_in_sticky")]


@pytest.mark.parametrize("value", ["3", "yes", "-1"])
def test_bad_setting_exits_125(value):
    proc = yama_run(*with_profile(["--set", f"fifos.protected={value}"]), "--", "true")
    assert proc.returncode == 125, proc.stderr
    assert "fifos.protected" in proc.stderr

"""fs.protected_symlinks (fs/namei.c: may_follow_link), per sandbox; and an
extension on the attacker's side of the same threat (protect_creation).

protected 1: following a TRAILING symlink whose directory is sticky and
             world-writable is allowed only if the follower's fsuid owns the
             link or the directory's owner owns it; else EACCES. Root is not
             exempt; intermediate components are never checked (the kernel's
             rule, KERNEL-SEMANTICS.md section 3).
protected "auto": level 1 enforced here only while the kernel's own
             fs.protected_symlinks is 0.
protect_creation: symlink/symlinkat into a sticky world-writable directory
             is EACCES unless the caller's fsuid owns that directory.
binfmt_write: while level 1 is enforced here, no binfmt_misc file is opened
             for writing (EACCES): a rule's interpreter is opened by the
             kernel at each exec of a file it matches, by a path whose links
             no call of the program's shows (csrc/gate.c).

follow_link reads only the request's facts: the core tabulates it for C."""
from __future__ import annotations

import errno

from ..chain import Deny
from . import Module, Setting, SettingError


class Level(Setting):
    """0..N or "auto" (also from --set, as a string)."""

    def parse(self, raw):
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            raw = int(raw)
        if isinstance(raw, bool) or raw not in self.choices:
            valid = ", ".join(f'"{c}"' if isinstance(c, str) else str(c) for c in self.choices)
            raise SettingError(f"bad value {raw!r}; valid values: {valid}")
        return raw


class Flag(Setting):
    """true or false (also from --set, as a string)."""

    def parse(self, raw):
        value = {"true": True, "false": False, "1": True, "0": False}.get(
            raw.strip().lower(), raw) if isinstance(raw, str) else raw
        if not isinstance(value, bool):
            raise SettingError(f"bad value {raw!r}; valid values: true, false")
        return value


def kernel_level(sysctl: str) -> int | None:
    """The kernel's own fs.protected_* (None if unreadable)."""
    try:
        with open(f"/proc/sys/fs/{sysctl}", encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


class Protection(Module):
    """A fs.protected_* re-creation: `protected` 0..max or "auto"."""

    sysctl = ""
    strongest = 1

    def __init__(self, config):
        super().__init__(config)
        wanted = self.config["protected"]
        self.kernel = kernel_level(self.sysctl)
        self.by_kernel = False
        if wanted == "auto":
            kernel = self.kernel if self.kernel is not None else 0
            self.by_kernel = kernel >= self.strongest
            self.level = self.strongest
            self.protected = 0 if self.by_kernel else self.strongest
        else:
            self.level = self.protected = wanted

    def enforcement(self) -> str:
        """The -v line: who enforces which level."""
        kernel = "?" if self.kernel is None else self.kernel
        if self.level == 0:
            return f"{self.name}: off"
        who = "the kernel" if self.by_kernel else "yama-run"
        return f"{self.name}: level {self.level} enforced by {who} (fs.{self.sysctl}={kernel})"


class Symlinks(Protection):
    name = "symlinks"
    sysctl = "protected_symlinks"
    strongest = 1
    settings = {
        "protected": Level("auto", (0, 1, "auto"), "fs.protected_symlinks: 0 off, 1 restrict "
                           "following links in sticky world-writable directories, auto"),
        "protect_creation": Flag(False, (True, False), "refuse creating symlinks in "
                                    "sticky world-writable directories not the caller's"),
    }
    tabulated = {"follow_link"}

    def hooks(self) -> set[str]:
        hooks = {"follow_link", "binfmt_write"} if self.protected else set()
        if self.config["protect_creation"]:
            hooks.add("path_symlink")
        return hooks

    def follow_link(self, req):
        if not self.protected:
            return None
        if req.follower_owns_link or not req.dir_sticky_world_writable or req.dir_owner_owns_link:
            return None
        return Deny(errno.EACCES, "trailing symlink in a sticky world-writable directory, "
                    "owned neither by the follower nor by the directory's owner")

    def binfmt_write(self, req):
        """A binfmt_misc rule names an interpreter the kernel opens by its
        path, following links there unseen: no rule is written while links
        are protected here."""
        if not self.protected:
            return None
        return Deny(errno.EACCES, "a binfmt_misc rule names an interpreter the kernel opens "
                    "by its path, following links yama-run cannot judge")

    def path_symlink(self, req):
        if not self.config["protect_creation"]:
            return None
        if req.dir_sticky_world_writable and not req.caller_owns_dir:
            return Deny(errno.EACCES, "symlink creation in a sticky world-writable directory "
                        "the caller does not own")
        return None


MODULE = Symlinks

"""fs.protected_hardlinks (fs/namei.c: may_linkat, safe_hardlink_source), per sandbox.

protected 0: no restriction
protected 1: a link to a file you do not own (and without CAP_FOWNER) only if
             it is a regular file, not setuid, not setgid-and-group-executable,
             and you may both read and write it
protected "auto": level 1 enforced here only while the kernel's own
             fs.protected_hardlinks is 0
Denials are EPERM, as in the kernel. The rule reads only the request's facts,
so the core tabulates it for its C fast path (the rule is written once, here)."""
from __future__ import annotations

import errno

from ..chain import Deny
from .symlinks import Level, Protection


class Hardlinks(Protection):
    name = "hardlinks"
    sysctl = "protected_hardlinks"
    strongest = 1
    settings = {
        "protected": Level(1, (0, 1, "auto"), "fs.protected_hardlinks: 0 off, 1 restrict "
                           "links to files the caller does not own, auto"),
    }
    tabulated = {"path_link"}     # verdicts depend on request.facts only

    def hooks(self) -> set[str]:
        return {"path_link"} if self.protected else set()

    def path_link(self, req):
        if not self.protected:
            return None
        if req.caller_owns_source or req.caller_has_fowner:
            return None
        if not req.source_is_regular:
            return Deny(errno.EPERM, "source is not a regular file and not the caller's")
        if req.source_is_setuid:
            return Deny(errno.EPERM, "source is setuid and not the caller's")
        if req.source_is_setgid_exec:
            return Deny(errno.EPERM, "source is setgid and group-executable, not the caller's")
        if not req.caller_can_read_write:
            return Deny(errno.EPERM, "caller cannot both read and write the source")
        return None


MODULE = Hardlinks

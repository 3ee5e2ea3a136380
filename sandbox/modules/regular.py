"""fs.protected_regular (fs/namei.c: may_create_in_sticky), per sandbox.

protected 1: open with O_CREAT of an existing regular file in a sticky
             world-writable directory, owned neither by the caller's fsuid nor
             by the directory's owner: EACCES. Root is not exempt.
protected 2: also in sticky group-writable directories.
protected "auto": level 2 enforced here only while the kernel's own
             fs.protected_regular is lower.
The rule reads only the request's facts: the core tabulates it for C."""
from __future__ import annotations

from .fifos import Fifos
from .sticky import sticky_create_rule
from .symlinks import Level


class Regular(Fifos):
    name = "regular"
    sysctl = "protected_regular"
    kind = "regular file"
    settings = {
        "protected": Level("auto", (0, 1, 2, "auto"), "fs.protected_regular: 0 off, 1 sticky "
                           "world-writable dirs, 2 also group-writable, auto"),
    }

    def create_in_sticky(self, req):
        if not req.is_regular:
            return None
        return sticky_create_rule(self.protected, req, self.kind)


MODULE = Regular

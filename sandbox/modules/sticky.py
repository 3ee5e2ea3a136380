"""The rule shared by the fifos and regular modules (may_create_in_sticky)."""
from __future__ import annotations

import errno

from ..chain import Deny


def sticky_create_rule(level: int, req, kind: str):
    """None or Deny for O_CREAT meeting an existing file of the module's kind
    in a sticky directory (only sticky directories are hook points)."""
    if not level or req.caller_owns_file or req.dir_owner_owns_file:
        return None
    if req.dir_world_writable:
        return Deny(errno.EACCES, f"O_CREAT of an existing {kind} in a sticky world-writable "
                    "directory, owned neither by the caller nor by the directory's owner")
    if level >= 2 and req.dir_group_writable:
        return Deny(errno.EACCES, f"O_CREAT of an existing {kind} in a sticky group-writable "
                    "directory, owned neither by the caller nor by the directory's owner")
    return None

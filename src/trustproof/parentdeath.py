"""Children that die with the process that started them: Linux's parent-death signal.

    argv = die_with_parent(["postgres", "-D", data])  # [setpriv, --pdeathsig, KILL, --, ...]

The kernel sends SIGKILL to the child the moment the thread that forked it ends — also when the
whole controller is SIGKILLed, which no handler in the controller can catch. The signal is set by
util-linux's ``setpriv`` right before it execs the real command, so nothing runs Python between
``fork`` and ``exec`` (a ``preexec_fn`` is unsafe in a process with threads), and it survives the
switch to the ``postgres`` account: ``Popen(user=...)`` changes the user *before* ``setpriv`` runs,
and the kernel clears the setting only on credential changes and set-user-ID executables, neither
of which follows.

Two limits, both covered by the sandbox's reaper (`trustproof.sandbox.reaper`): the signal reaches
only the direct child (not what it spawned into its process group), and "parent" means the forking
*thread* — so the sandbox forks from the thread that lives as long as the sandbox (its event loop's
thread, or a worker of that loop's default executor). Without ``setpriv`` the command runs as
given, and only the reaper cleans up.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from functools import cache

SIGNAL = "KILL"


@cache
def setpriv() -> str | None:
    """The path of util-linux's ``setpriv`` (Debian installs it everywhere), or None."""
    return shutil.which("setpriv")


def die_with_parent(argv: Sequence[str]) -> list[str]:
    """`argv`, run so that it receives SIGKILL when the thread that starts it ends."""
    tool = setpriv()
    if tool is None:
        return list(argv)
    return [tool, "--pdeathsig", SIGNAL, "--", *argv]

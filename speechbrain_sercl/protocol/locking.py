"""One run per folder: a lock that a killed run never leaves behind.

Two runs writing into one folder corrupt each other: the epochs of both in
one ``train_log.txt``, checkpoints deleted under the other's feet. So a run
holds an OS lock on ``<folder>/.sercl.lock`` (``flock`` on Unix, through the
``filelock`` package) while it writes there. The OS drops the lock when the
process ends, however it ends: a killed run never blocks the next one and
leaves nothing to clean up. A second run stops at once with
:class:`FolderLockedError`, one line naming the folder and the holder's
process id. The holder writes its id beside the lock, in
``.sercl.lock.pid`` (not in the lock file: ``filelock`` before 4.0
truncates that file on every attempt to take it). The id is only named,
never taken for a lock: one left by a killed holder blocks nothing.

Who holds what:

- the fold runner (``sercl folds``, ``sercl demo``) holds the experiment
  folder while it generates and prepares the data and runs every step
  (:meth:`speechbrain_sercl.protocol.runner.FoldRunner.run`);
- a recipe holds its own step folder (:func:`hold_step_folder`), never the
  experiment folder, which the runner that started it holds; under
  ``torchrun`` only the main process takes it (the ranks of one step share
  its folder by design).

Example
-------
>>> folder = getfixture("tmp_path") / "experiment"
>>> with folder_lock(folder):
...     holder_pid(folder) == os.getpid()
True
>>> with folder_lock(folder):  # released: it can be taken again
...     pass
>>> holder_pid(folder) is None
True

Authors
 * speechbrain-sercl developers
"""

import atexit
import os
import sys
import time
from contextlib import contextmanager

import filelock

from speechbrain_sercl import layout
from speechbrain_sercl.atomic import writing_atomically

__all__ = ["FolderLockedError", "folder_lock", "hold_step_folder", "holder_pid"]

# How long a refused run waits for a holder that has just taken the lock to
# write its process id.
HOLDER_WAIT_SECONDS = 1.0
_held = {}  # lock file path -> the lock this process holds


class FolderLockedError(RuntimeError):
    """Another process writes into the folder (the message says which).

    Example
    -------
    >>> raise FolderLockedError("exp is in use by process 12")
    Traceback (most recent call last):
    ...
    speechbrain_sercl...FolderLockedError: exp is in use by process 12
    """


@contextmanager
def folder_lock(folder):
    """Hold ``folder``'s lock for the block (the folder is created).

    Blocks nest in one process: an inner block on a folder this process
    holds already takes nothing, and the outermost one releases it (the
    command line holds the experiment folder from the first step to the
    last file of its report, around the runner's own block).

    Arguments
    ---------
    folder : str or os.PathLike
        The folder one run at a time writes into.

    Yields
    ------
    None

    Raises
    ------
    FolderLockedError
        At once, when another process holds the lock.

    Example
    -------
    >>> folder = getfixture("tmp_path") / "run"
    >>> with folder_lock(folder):
    ...     sorted(os.listdir(folder))
    ['.sercl.lock', '.sercl.lock.pid']
    """
    path = os.path.abspath(layout.lock_file(folder))
    if path in _held:  # this process holds it: the outer holder releases it
        yield
        return
    _held[path] = _acquire(folder)
    try:
        yield
    finally:
        _release(folder, _held.pop(path))


def hold_step_folder(folder):
    """For a recipe: hold its step folder's lock until the process ends.

    Only the main process takes it (under ``torchrun`` the ranks of one
    step share its folder). A process that holds it already keeps it. On
    a normal exit its process id is removed too.

    Arguments
    ---------
    folder : str or os.PathLike
        The step's output folder (not the experiment folder: the fold
        runner that started the step holds that one).

    Raises
    ------
    SystemExit
        Status 1 with one line (``FolderLockedError: <folder> is in use by
        process <id> ...``) when another process holds the folder.
    """
    # Imported here: the lock itself needs neither torch nor SpeechBrain,
    # which take seconds to import.
    from speechbrain.utils.distributed import if_main_process

    path = os.path.abspath(layout.lock_file(folder))
    if not if_main_process() or path in _held:
        return
    try:
        lock = _acquire(folder)
    except FolderLockedError as error:
        sys.exit(f"{type(error).__name__}: {error}")
    _held[path] = lock
    atexit.register(_release, folder, lock)  # a killed process skips this


def holder_pid(folder):
    """The process id the holder of ``folder``'s lock wrote, if any.

    Arguments
    ---------
    folder : str or os.PathLike
        A folder of this package's runs.

    Returns
    -------
    int or None
        The id; None when no holder wrote one (or it is unreadable). It may
        be that of a process killed while holding the lock: only the lock
        itself says whether the folder is taken.
    """
    try:
        with open(layout.lock_file(folder, layout.LOCK_HOLDER_FILE)) as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None


def _acquire(folder):
    """Take the lock without waiting and write this process's id."""
    os.makedirs(folder, exist_ok=True)
    lock = filelock.FileLock(layout.lock_file(folder), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise FolderLockedError(_in_use(folder)) from None
    try:
        holder = layout.lock_file(folder, layout.LOCK_HOLDER_FILE)
        with writing_atomically(holder) as tmp_path:
            with open(tmp_path, "w") as tmp_file:
                tmp_file.write(f"{os.getpid()}\n")
    except BaseException:
        lock.release()
        raise
    return lock


def _release(folder, lock):
    """Remove this process's id, then drop the lock."""
    try:
        os.unlink(layout.lock_file(folder, layout.LOCK_HOLDER_FILE))
    except FileNotFoundError:
        pass
    finally:
        lock.release()


def _in_use(folder):
    """The one-line message for a folder another process holds."""
    deadline = time.monotonic() + HOLDER_WAIT_SECONDS
    pid = holder_pid(folder)
    # The holder writes its id just after taking the lock: an id that is
    # missing or names a dead process (a killed holder's) is not yet its.
    while not _is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
        pid = holder_pid(folder)
    holder = f"process {pid}" if _is_running(pid) else "another process"
    return (
        f"{os.fspath(folder)} is in use by {holder}: one run at a time "
        "writes there; wait for it to end, or stop it"
    )


def _is_running(pid):
    """Whether process ``pid`` exists (assumed where it cannot be asked)."""
    if pid is None:
        return False
    if os.name != "posix":  # os.kill(pid, 0) would end it on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True

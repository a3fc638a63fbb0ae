"""Files that a kill leaves either old or new, never half written.

Training is resumable after a kill at any point, and the fold runner takes
a step's output file as proof that the step finished: every file that
marks progress (encoders, test reports, manifests, folds, label encoders)
is written to a temporary file in the same folder, flushed to the disk,
and then moved into place in one step. This module is the package's one
way to do that: :func:`writing_atomically` for a file,
:func:`writing_folder_atomically` for a folder.

Authors
 * speechbrain-sercl developers
"""

import os
import shutil
import tempfile
from contextlib import contextmanager

__all__ = ["writing_atomically", "writing_folder_atomically"]


def _umask():
    """The process's file mode mask (read once: setting it is the only way
    to read it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# A new file gets the mode ``open`` would give it, not mkstemp's 0o600.
_FILE_MODE = 0o666 & ~_umask()


@contextmanager
def writing_atomically(path):
    """Give a temporary path that replaces ``path`` when the block succeeds.

    Readers, and a run resumed after a kill, see the old file or the new
    one, never half of one; on an error the old file stays and the
    temporary one goes. The new file is flushed to the disk before it
    replaces the old one, and gets the mode a plain ``open`` would give it
    (the umask's, not ``0o600``), so a prepared folder can be shared.

    Arguments
    ---------
    path : str or os.PathLike
        The file to (re)write.

    Yields
    ------
    str
        The temporary path to write to, in the same folder.

    Example
    -------
    >>> path = getfixture("tmp_path") / "weights.txt"
    >>> with writing_atomically(path) as tmp:
    ...     _ = open(tmp, "w").write("new")
    >>> path.read_text(), oct(path.stat().st_mode & 0o777) == oct(_FILE_MODE)
    ('new', True)
    >>> with writing_atomically(path) as tmp:
    ...     _ = open(tmp, "w").write("half")
    ...     raise RuntimeError("interrupted")
    Traceback (most recent call last):
    ...
    RuntimeError: interrupted
    >>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
    ('new', ['weights.txt'])
    """
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp_path = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(handle)
    try:
        yield tmp_path
        _flush_to_disk(tmp_path)
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise


def _flush_to_disk(path):
    """Waits until the file's data is on the disk, so that a crash after
    the move cannot leave an empty file in its place."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def writing_folder_atomically(folder):
    """Give a temporary folder that replaces ``folder`` when the block
    succeeds.

    The temporary folder is next to ``folder`` (same file system) and
    readable by all (``0o755``); on success it replaces ``folder`` (an
    existing one is removed first, so there is a moment with neither), on
    an error it goes and ``folder`` stays as it was.

    Arguments
    ---------
    folder : str or os.PathLike
        The folder to (re)write.

    Yields
    ------
    str
        The temporary folder to write to.

    Example
    -------
    >>> folder = getfixture("tmp_path") / "model"
    >>> with writing_folder_atomically(folder) as tmp:
    ...     _ = open(os.path.join(tmp, "a.txt"), "w").write("a")
    >>> sorted(os.listdir(folder)), oct(os.stat(folder).st_mode & 0o777)
    (['a.txt'], '0o755')
    >>> with writing_folder_atomically(folder) as tmp:
    ...     raise RuntimeError("interrupted")
    Traceback (most recent call last):
    ...
    RuntimeError: interrupted
    >>> sorted(os.listdir(folder.parent))
    ['model']
    """
    folder = os.fspath(folder)
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".staging-", dir=parent)
    try:
        os.chmod(staging, 0o755)  # mkdtemp's 0o700 would keep it private
        yield staging
        if os.path.exists(folder):
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

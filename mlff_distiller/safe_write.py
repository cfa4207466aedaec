"""Safe writes: an output reaches its final path only whole and verified, and never over an input.

Every file a command writes goes through :func:`staged_file` (or :func:`safe_write`): it is
written to a hidden temporary file in the output's own folder (same file system, so the final
:func:`os.replace` is atomic) and renamed into place only after the writer, and whatever check it
runs on the written file, returned without an exception. A failure leaves the previous output
byte-identical and no temporary file behind.

Before anything is written, :func:`check_output` refuses, with one line naming the path and the
problem (an :class:`~mlff_distiller.errors.MLFFDError`, exit 2):

- an output that is the same file as an input (``os.path.samefile``: through symlinks, hard links
  and relative spellings such as ``./model.ckpt``), whatever ``--overwrite`` says;
- an existing output without ``overwrite`` (:class:`~mlff_distiller.errors.OverwriteError`);
- a directory where a file is expected, or a file where a folder is expected (also as a parent);
- a folder the process may not write in.

Missing parent folders are created (as ``mkdir -p`` would) when the output is written.
"""

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .errors import MLFFDError, OverwriteError

#: Errors of the file system the user can fix (space, permissions, read-only mounts, quotas).
_USER_FIXABLE = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR}


def check_output(
    path: str | Path,
    *,
    inputs: Iterable[str | Path | None] = (),
    overwrite: bool = False,
    folder: bool = False,
) -> Path:
    """Refuse an output path that cannot or must not be written; nothing is written.

    Parameters
    ----------
    path : str or Path
        The output: a file, or with ``folder=True`` a folder the command fills.
    inputs : iterable of str or Path or None
        Files (or folders) the command reads; an output that is one of them is refused even with
        ``overwrite``. ``None`` entries and inputs that do not exist are ignored.
    overwrite : bool
        Accept an existing output (for a folder: one that is not empty).
    folder : bool
        The output is a folder rather than a file.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    MLFFDError
        When ``path`` is an input, a directory where a file is expected (or the reverse), or lies in
        a folder that cannot be written.
    OverwriteError
        When ``path`` exists (a folder: is not empty) and ``overwrite`` is False.
    """
    path = Path(path)
    for source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise MLFFDError(
                f"{path} is the input {source}: write the output to another path (--overwrite never replaces an input)"
            )
    if path.is_dir() and not folder:
        raise MLFFDError(f"{path} is a directory; give a file name for the output")
    if path.exists() and folder and not path.is_dir():
        raise MLFFDError(f"{path} is a file; give a folder for the output")
    if not overwrite and path.exists() and (not folder or any(path.iterdir())):
        held = "exists and is not empty" if folder else "exists"
        raise OverwriteError(f"{path} {held}; pass --overwrite to replace it")
    _check_parent(path if folder and path.is_dir() else path.parent)
    return path


@contextlib.contextmanager
def staged_file(
    path: str | Path,
    *,
    inputs: Iterable[str | Path | None] = (),
    overwrite: bool = False,
) -> Iterator[Path]:
    """Write a file through a temporary beside it, renamed to ``path`` when the block succeeds.

    ::

        with staged_file(output, inputs=[checkpoint], overwrite=overwrite) as temporary:
            write(temporary)
            verify(temporary)  # an exception here leaves ``output`` as it was

    Parameters
    ----------
    path : str or Path
        The final file; checked first with :func:`check_output` (arguments as there).
    inputs, overwrite
        As in :func:`check_output`.

    Yields
    ------
    Path
        A path that does not exist yet, in the folder of ``path`` and with its suffix (writers that
        choose a format by the suffix see the right one); the block writes it.

    Raises
    ------
    MLFFDError
        From :func:`check_output`; or when the file system refuses the write (no space, no
        permission), naming the path.
    """
    path = check_output(path, inputs=inputs, overwrite=overwrite)
    _make_folder(path.parent)
    temporary = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.partial{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        if exc.errno in _USER_FIXABLE:
            raise MLFFDError(f"cannot write {path}: {exc.strerror}") from exc
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def safe_write(
    path: str | Path,
    write: Callable[[Path], object],
    *,
    inputs: Iterable[str | Path | None] = (),
    overwrite: bool = False,
) -> Path:
    """Write ``path`` with ``write(temporary)`` and rename it into place once that returns.

    Parameters
    ----------
    path : str or Path
        The final file.
    write : callable
        Writes the file it is given and verifies it, raising to reject it; its result is ignored.
    inputs, overwrite
        As in :func:`check_output`.

    Returns
    -------
    Path
        ``path``, written.
    """
    with staged_file(path, inputs=inputs, overwrite=overwrite) as temporary:
        write(temporary)
    return Path(path)


def safe_write_text(
    path: str | Path,
    text: str,
    *,
    inputs: Iterable[str | Path | None] = (),
    overwrite: bool = False,
) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`safe_write`; arguments as there."""
    return safe_write(
        path, lambda staged: staged.write_text(text, encoding="utf-8"), inputs=inputs, overwrite=overwrite
    )


def output_folder(
    path: str | Path,
    *,
    inputs: Iterable[str | Path | None] = (),
    overwrite: bool = False,
) -> Path:
    """Check a folder output with :func:`check_output` (``folder=True``) and create it.

    Returns
    -------
    Path
        The folder, existing; write its files with :func:`staged_file`.
    """
    path = check_output(path, inputs=inputs, overwrite=overwrite, folder=True)
    _make_folder(path)
    return path


def _same_file(output: Path, source: Path) -> bool:
    """Whether ``output`` names the existing file or folder ``source`` (symlinks followed)."""
    try:
        return os.path.samefile(output, source)
    except OSError:  # either does not exist (or cannot be reached): not the same file
        return False


def _check_parent(folder: Path) -> None:
    """Refuse a folder that is a file, or lies under one, or cannot be written in."""
    existing = folder.absolute()
    while not existing.exists():
        if existing.is_symlink():
            raise MLFFDError(f"{existing} is a broken symbolic link; cannot create the folder {folder}")
        existing = existing.parent
    if not existing.is_dir():
        raise MLFFDError(f"{existing} is a file, not a folder; cannot write in {folder}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MLFFDError(f"cannot write in {existing}: permission denied")


def _make_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents, as one line on failure."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MLFFDError(f"cannot create the folder {folder}: {exc.strerror}") from exc

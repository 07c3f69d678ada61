"""How a command calls the library: its errors as one line on stderr and an exit code (the module
docstring of :mod:`sparsetrain.cli` lists them), its warnings as one line each, SIGINT and SIGTERM as an
interruption. Every command module calls :func:`run_command`; light to import (click, the error types,
the signal handlers)."""
from __future__ import annotations

import errno
import os
import signal
import sys
import warnings

import click

from .base import ConfigError, DataFormatError, NonFiniteError, SparseTrainError
from .interrupts import handling_interrupts, stopped_by

EXIT_RUNTIME = 1
EXIT_USAGE = 2


def interrupted(where: str) -> int:
    """One line for a run stopped by SIGINT (exit 130) or SIGTERM (exit 143)."""
    what, code = stopped_by()
    if code == 128 + signal.SIGINT and sys.stderr.isatty():
        click.echo(err=True)  # after the terminal's ^C
    say_error(f"{what}; {where}" if where else what)
    return code


def say_error(message: str) -> None:
    text = " ".join(str(message).split("\n")).strip()
    click.echo(f"error: {text}", err=True)


def run_command(fn, *args, **kwargs) -> int:
    """Call the library; turn its errors into one line and an exit code, its warnings into one line each
    (not Python's form: the source file, line and code below it). SIGTERM ends
    every command as Ctrl-C does (its temporary files removed: a killed gen-data left a partial data file
    beside the real name), not at once."""
    if os.environ.get("SPARSETRAIN_DEBUG"):
        with handling_interrupts(sigterm=True):
            return fn(*args, **kwargs)
    try:
        with handling_interrupts(sigterm=True), warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            return fn(*args, **kwargs)
    except click.ClickException:
        raise
    except BrokenPipeError:  # `sparsetrain predict ... | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except ConfigError as e:
        say_error(e)
        return EXIT_USAGE
    except (DataFormatError, NonFiniteError, SparseTrainError) as e:
        say_error(e)
        return EXIT_RUNTIME
    except FileNotFoundError as e:
        say_error(f"{e.filename}: file not found")
        return EXIT_RUNTIME
    except OSError as e:  # (sparsetrain's own files are OutputErrors naming them: a nameless full disk is stdout)
        name = e.filename or ("<stdout>" if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else "")
        say_error(f"{name}: {e.strerror or e}".lstrip(": "))
        return EXIT_RUNTIME
    except SystemError as e:
        from .trainer import is_interrupt

        if is_interrupt(e):  # Ctrl-C inside a numba kernel call surfaces as a SystemError
            raise KeyboardInterrupt from None
        say_error(f"internal error: {type(e).__name__}: {e} (run with SPARSETRAIN_DEBUG=1 for the traceback)")
        return EXIT_RUNTIME
    except MemoryError:
        say_error("out of memory; try data.cache: stream or a smaller batch_size")
        return EXIT_RUNTIME
    except Exception as e:  # a bug: still one line, but say how to get the traceback
        say_error(f"internal error: {type(e).__name__}: {e} (run with SPARSETRAIN_DEBUG=1 for the traceback)")
        return EXIT_RUNTIME


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings (e.g. a storage fallback, once per node) as one ``warning:`` line on stderr (every command:
    :func:`run_command`)."""
    click.echo(f"warning: {' '.join(str(message).split())}", err=True)

"""The pieces every text parser's kernel shares (LibSVM, CSV, VW): the ``info`` vector's common
slots, the one error recorder, and the grammar-free line scanning of byte buffers.

A parser kernel never raises: it returns an int64 ``info`` vector whose first :data:`N_COMMON`
slots mean the same in every parser (rows, entries and lines parsed, the error code with the
offending byte span and an auxiliary value, the slow numbers listed), and its own slots after
them. At the first malformed token it calls :func:`record_error` and returns; the Python caller
builds the message (file, line, token).

:func:`record_error` is never compiled on its own: it is inlined into the calling kernel before
type inference (``inline="always"``), a few stores per call site. An error code is a module
constant, which numba types as a *literal*, so an ordinary helper would be compiled once for
every distinct ``(code, aux)`` combination at its call sites — about twenty full numba pipelines
for the LibSVM kernel on a cold cache. (A fixed signature would avoid that too, but numba then
compiles or loads it when the module is imported.)
"""
from __future__ import annotations

from numba import njit

# Slots of the int64 ``info`` vector common to the parser kernels (each parser's own follow).
I_ROWS = 0  # data rows parsed (up to the error, when there is one)
I_NNZ = 1  # stored entries parsed
I_LINES = 2  # newline characters consumed
I_ERR = 3  # error code (OK when none)
I_ERR_START = 4  # byte span of the offending token
I_ERR_END = 5
I_ERR_AUX = 6  # a value the message needs (a limit, a count, a column)
I_NSLOW = 7  # numbers listed for the caller to convert with Python's float
N_COMMON = 8

OK = 0


@njit(cache=True, nogil=True, inline="always")
def record_error(info, code, start, end, aux, rows, nslow):
    """Record error ``code`` at ``buf[start:end]`` (with ``aux``) and the rows/slow numbers so far."""
    info[I_ROWS] = rows
    info[I_NSLOW] = nslow
    info[I_ERR] = code
    info[I_ERR_START] = start
    info[I_ERR_END] = end
    info[I_ERR_AUX] = aux


@njit(cache=True, nogil=True, inline="always")
def is_space(c):
    """Whitespace within a line: space, tab, CR, VT, FF."""
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12


@njit(cache=True, nogil=True, inline="always")
def line_end(buf, p):
    """The index of the first newline at or after ``p``; the buffer must end with one (a sentinel)."""
    while buf[p] != 10:
        p += 1
    return p


# ---------------------------------------------------------------------------------------
# Newline scanning for the chunk readers (``chunks.py``, ``text_pipeline.py``): any grammar.


@njit(cache=True, nogil=True)
def last_newline(buf):
    """Index of the last b'\\n' in ``buf`` or -1."""
    for i in range(len(buf) - 1, -1, -1):
        if buf[i] == 10:
            return i
    return -1


@njit(cache=True, nogil=True)
def first_newline(buf, start):
    """Index of the first b'\\n' at or after ``start`` or -1."""
    for i in range(start, len(buf)):
        if buf[i] == 10:
            return i
    return -1


@njit(cache=True, nogil=True)
def count_newlines(buf):
    """The number of b'\\n' in ``buf``."""
    c = 0
    for i in range(len(buf)):
        if buf[i] == 10:
            c += 1
    return c

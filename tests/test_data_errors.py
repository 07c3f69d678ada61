"""Bad data files and failed writes are clean errors (issue 21): one line naming the file (and
the line where there is one), a typed error for Python callers, exit 1 from the CLI.

- corrupt or truncated ``.gz``/``.bz2`` input is a DataFormatError, not EOFError/zlib.error;
- a line longer than ``max_line_bytes`` is an error with file:line, so that ``/dev/zero`` or a
  small ``.gz`` holding one huge line cannot take all the memory;
- writing into a missing directory, or onto a full disk, is an OutputError naming the path
  asked for (not a temporary file), and leaves no partial file.
"""
from __future__ import annotations

import bz2
import errno
import gzip
import io
import os
import re
import socket

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from sparsetrain.base import DataFormatError, OutputError
from sparsetrain.cli import main
from sparsetrain.fileio import open_atomic, write_atomic
from sparsetrain.io import LibSVMIter, LibSVMReader, dump_libsvm, load_libsvm
from sparsetrain.io.base import token_text
from sparsetrain.io.csv_reader import CSVSchema, load_csv
from sparsetrain.io.vw_reader import load_vw
from sparsetrain.io.synthetic import generate_libsvm
from sparsetrain.labels import third_value

LINREG = os.path.join(os.path.dirname(__file__), "..", "configs", "linreg.yaml")
TEXT = b"".join(b"%d 1:%d.5 7:2\n" % (i % 5, i) for i in range(20_000))


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
    return lines[0]


def _gz(text=TEXT):
    return gzip.compress(text, mtime=0)


CORRUPT = {
    "truncated.gz": lambda: _gz()[: len(_gz()) // 2],
    "two-bytes.gz": lambda: b"\x1f\x8b",
    "header-only.gz": lambda: _gz()[:10],
    "bad-deflate.gz": lambda: _gz()[:20] + bytes(b ^ 0x5A for b in _gz()[20:60]) + _gz()[60:],
    "bad-crc.gz": lambda: _gz()[:-8] + bytes([_gz()[-8] ^ 1]) + _gz()[-7:],
    "trailing-garbage.gz": lambda: _gz() + b"\x1f\x8bnot gzip",
    "truncated.bz2": lambda: bz2.compress(TEXT)[:400],
    "bad-stream.bz2": lambda: b"BZh9" + b"\x00" * 64,
}
READERS = {
    "load_libsvm": lambda p: load_libsvm(p),
    "LibSVMReader": lambda p: list(LibSVMReader(p, zero_based=True)),
    "LibSVMIter": lambda p: list(LibSVMIter(p, (8,), batch_size=64)),
    "parts": lambda p: list(LibSVMReader(p, zero_based=True, num_parts=2, part_index=1)),
}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_compressed_data_is_a_data_error_naming_the_file(tmp_path, name, reader):
    path = tmp_path / name
    path.write_bytes(CORRUPT[name]())
    kind = "gzip" if name.endswith(".gz") else "bzip2"
    with pytest.raises(DataFormatError, match=re.escape(str(path)) + f".*corrupt or truncated {kind} data"):
        READERS[reader](str(path))


def test_corrupt_data_after_good_lines_names_the_last_good_line(tmp_path):
    path = tmp_path / "late.gz"
    path.write_bytes(_gz()[: len(_gz()) * 3 // 4])
    with pytest.raises(DataFormatError, match=r"late\.gz: corrupt or truncated gzip data after line \d+ "):
        load_libsvm(str(path), chunk_size=4096)


def test_a_parse_error_before_the_corruption_is_reported_first(tmp_path):
    path = tmp_path / "both.gz"
    text = b"1 1:1\n2 x:1\n" + TEXT
    path.write_bytes(gzip.compress(text)[:-200])
    with pytest.raises(DataFormatError, match=r"both\.gz:2: feature index 'x'"):
        load_libsvm(str(path), chunk_size=1024)


@pytest.mark.parametrize("name", ["truncated.gz", "bad-crc.gz", "truncated.bz2"])
def test_cli_reports_corrupt_compressed_data_in_one_line(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(CORRUPT[name]())
    res = _cli("fit", LINREG, "--set", f"data.train={path}", "--output", tmp_path / "r", "--quiet")
    assert res.exit_code == 1
    assert str(path) in _one_error_line(res.stderr)


# ------------------------------------------------------------------------------------------
# Unbounded lines


def _long_line_file(tmp_path, name, line_no=3, length=5000, compress=False):
    lines = [b"1 1:1 2:2"] * (line_no - 1) + [b"2 " + b" ".join(b"%d:1" % i for i in range(1, length // 5))]
    lines += [b"3 3:1"] * 4
    text = b"\n".join(lines) + b"\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(text) if compress else text)
    return str(path)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("chunk_size", [64, 1 << 20])  # the line does not fit a chunk / fits one
@pytest.mark.parametrize("reader", ["load_libsvm", "LibSVMReader", "LibSVMIter"])
def test_a_line_longer_than_max_line_bytes_is_an_error_with_its_line(tmp_path, compress, chunk_size, reader):
    path = _long_line_file(tmp_path, "long.libsvm.gz" if compress else "long.libsvm", compress=compress)
    kw = {"max_line_bytes": 1000, "chunk_size": chunk_size}
    run = {
        "load_libsvm": lambda: load_libsvm(path, **kw),
        "LibSVMReader": lambda: list(LibSVMReader(path, zero_based=False, **kw)),
        "LibSVMIter": lambda: list(LibSVMIter(path, (2000,), batch_size=2, **kw)),
    }[reader]
    with pytest.raises(DataFormatError, match=re.escape(path) + r":3: line is longer than max_line_bytes=1000"):
        run()
    kw["max_line_bytes"] = 10_000  # the same file under a larger bound
    run()


def test_the_line_bound_holds_for_a_last_line_without_newline(tmp_path):
    path = tmp_path / "tail.libsvm"
    path.write_bytes(b"1 1:1\n2 " + b"3:1 " * 300)
    with pytest.raises(DataFormatError, match=r"tail\.libsvm:2: line is longer"):
        load_libsvm(str(path), max_line_bytes=500, chunk_size=64)


def test_dev_zero_stops_at_the_line_bound():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(DataFormatError, match=r"^/dev/zero:1: line is longer than max_line_bytes=65536$"):
        load_libsvm("/dev/zero", max_line_bytes=1 << 16)


def test_a_small_gzip_of_one_huge_line_stops_at_the_bound(tmp_path):
    path = tmp_path / "bomb.libsvm.gz"
    with gzip.open(path, "wb") as f:  # 64 MB of one line in ~64 KB
        f.write(b"1 ")
        block = b"0" * (1 << 20)
        for _ in range(64):
            f.write(block)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(DataFormatError, match=r"bomb\.libsvm\.gz:1: line is longer than max_line_bytes=1048576"):
        load_libsvm(str(path), max_line_bytes=1 << 20)


def test_max_line_bytes_is_checked():
    with pytest.raises(ValueError, match="max_line_bytes"):
        load_libsvm("/dev/null", max_line_bytes=0)


def test_cli_data_max_line_bytes(tmp_path):
    path = _long_line_file(tmp_path, "long.libsvm", line_no=2, length=3000)
    res = _cli("fit", LINREG, "--set", f"data.train={path}", "--set", "data.max_line_bytes=1000",
               "--output", tmp_path / "r", "--quiet")
    assert res.exit_code == 1
    assert _one_error_line(res.stderr) == f"error: {path}:2: line is longer than max_line_bytes=1000"


def test_streaming_a_device_is_a_data_error():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(DataFormatError, match="/dev/zero: streaming needs a regular file"):
        LibSVMReader("/dev/zero")


# ------------------------------------------------------------------------------------------
# Writing: a missing directory, a full disk


class _FullDisk(io.FileIO):
    """A file on a disk with ``room`` bytes left."""

    room = 2000

    def write(self, b):
        if self.tell() + len(memoryview(b)) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(b)


@pytest.fixture
def full_disk(monkeypatch):
    real = os.fdopen

    def fdopen(fd, mode="r", *args, **kw):
        return _FullDisk(fd, "w") if "w" in mode else real(fd, mode, *args, **kw)

    monkeypatch.setattr(os, "fdopen", fdopen)


def _writers(path):
    X = sp.random(500, 50, density=0.2, format="csr", random_state=0)
    return {
        "dump_libsvm": lambda: dump_libsvm(X, np.arange(500), path),
        "generate_libsvm": lambda: generate_libsvm(path, 500, 50, density=0.2),
        "write_atomic": lambda: write_atomic(path, b"x" * 5000),
    }


@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2"])
@pytest.mark.parametrize("writer", ["dump_libsvm", "generate_libsvm"])
def test_writing_into_a_missing_directory_names_the_directory(tmp_path, writer, suffix):
    path = tmp_path / "missing" / f"x.libsvm{suffix}"
    with pytest.raises(OutputError, match=re.escape(f"{path}: cannot write: the directory {path.parent} does not exist")):
        _writers(str(path))[writer]()
    assert not path.parent.exists()


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("writer", ["dump_libsvm", "generate_libsvm", "write_atomic"])
def test_a_full_disk_names_the_path_and_leaves_no_partial_file(tmp_path, full_disk, writer, suffix):
    path = tmp_path / f"x.libsvm{suffix}"
    with pytest.raises(OutputError) as e:
        _writers(str(path))[writer]()
    assert str(e.value) == f"{path}: cannot write (no space left on device)"
    assert e.value.errno == errno.ENOSPC and isinstance(e.value, OSError)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("writer", ["dump_libsvm", "generate_libsvm", "write_atomic"])
def test_a_name_ending_in_a_slash_is_refused_not_written_as_a_file(tmp_path, writer):
    # "out/" where no directory "out" is: the rename wrote the file "out" (predict --out out/ said 'wrote 3
    # predictions to out/'; gen-data wrote "out", then failed at its weights file, leaving it)
    path = f"{tmp_path / 'out'}/"
    with pytest.raises(OutputError) as e:
        _writers(path)[writer]()
    assert str(e.value) == f"{path}: cannot write (Is a directory)"
    assert os.listdir(tmp_path) == []
    (tmp_path / "out").mkdir()  # (a directory that is there: as before, the same words)
    with pytest.raises(OutputError, match=re.escape(f"{path}: cannot write (Is a directory)")):
        _writers(path)[writer]()


def test_gen_data_and_predict_to_a_name_ending_in_a_slash_write_nothing(tmp_path):
    res = _cli("gen-data", "--rows", 10, "--features", 5, "--density", 0.5, "--out", f"{tmp_path / 'new' / 'out'}/")
    assert res.exit_code == 1
    assert _one_error_line(res.stderr) == f"error: {tmp_path / 'new' / 'out'}/: cannot write (Is a directory)"
    assert os.listdir(tmp_path) == []  # (nor the directory gen-data made for it)


def test_a_write_removes_what_a_killed_writer_of_the_same_file_left(tmp_path):
    # a gen-data killed with SIGKILL (or by the OOM killer) left '.tmp-g.libsvm.*', 250 MB, beside its output
    # for good: nothing ran to remove it, and later writes of the file left it there
    import subprocess
    import sys

    from sparsetrain import fileio

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    prefix = f".tmp-g.libsvm.{fileio._HOST}-"
    dead = int(gone.stdout)
    left = {"dead": f"{prefix}{dead}.x1", "live": f"{prefix}{os.getpid()}.x2",
            "another machine's": ".tmp-g.libsvm.elsewhere-1.x3",
            "another file's": f".tmp-h.libsvm.{fileio._HOST}-{dead}.x4"}
    for name in left.values():
        (tmp_path / name).write_bytes(b"half")
    write_atomic(str(tmp_path / "g.libsvm"), b"1 0:1\n")
    assert sorted(os.listdir(tmp_path)) == sorted(["g.libsvm"] + [n for k, n in left.items() if k != "dead"])


def test_a_temporary_file_of_another_host_is_left_alone_whatever_its_pid(tmp_path):
    # the host part of the name was the host name's first 40 characters with '.' as '_': 'node-a.x' and
    # 'node-a_x' (or long names alike at the start) took each other's live writers' files for their own dead ones'
    import subprocess
    import sys

    from sparsetrain import fileio

    here = socket.gethostname()
    others = [here.replace(".", "_") if "." in here else here + "_", here[:40] + "-other-host-of-a-long-name"]
    assert len({fileio._host_tag(n) for n in [here, *others]}) == 3
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    left = [f".tmp-g.libsvm.{fileio._host_tag(n)}-{dead}.x{k}" for k, n in enumerate(others)]
    for name in left:
        (tmp_path / name).write_bytes(b"half")
    write_atomic(str(tmp_path / "g.libsvm"), b"1 0:1\n")
    assert sorted(os.listdir(tmp_path)) == sorted(["g.libsvm", *left])


def test_an_error_inside_the_block_leaves_the_old_file(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with open_atomic(str(path)) as f:
            f.write(b"new")
            raise RuntimeError("stop")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["keep.txt"]


@pytest.mark.parametrize("fmt", ["libsvm", "csv"])
def test_gen_data_makes_a_missing_directory_as_predict_export_and_init_do(tmp_path, fmt):
    # it said 'error: .../x.libsvm: cannot write: the directory ... does not exist'
    out = tmp_path / "new" / "deeper" / ("x.libsvm" if fmt == "libsvm" else "x.tsv")
    options = ["--features", 5, "--density", 0.5] if fmt == "libsvm" else ["--format", "csv"]
    res = _cli("gen-data", "--rows", 10, *options, "--out", out, "-q")
    assert res.exit_code == 0, res.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([out.name, out.name + (
        ".weights.npy" if fmt == "libsvm" else ".model.npz")])


def test_gen_data_that_fails_removes_the_directories_it_made(tmp_path, full_disk):
    out = tmp_path / "new" / "deeper" / "x.libsvm"
    res = _cli("gen-data", "--rows", 2000, "--features", 50, "--density", 0.2, "--out", out)
    assert res.exit_code == 1
    assert _one_error_line(res.stderr) == f"error: {out}: cannot write (no space left on device)"
    assert os.listdir(tmp_path) == []
    file = tmp_path / "file"
    file.write_text("")
    res = _cli("gen-data", "--rows", 10, "--features", 5, "--density", 0.5, "--out", file / "x.libsvm")
    assert res.exit_code == 1
    assert _one_error_line(res.stderr) == (f"error: {file / 'x.libsvm'}: cannot create the directory {file} (File "
                                           "exists)")


def test_gen_data_on_a_full_disk_is_one_line(tmp_path, full_disk):
    out = tmp_path / "x.libsvm"
    res = _cli("gen-data", "--rows", 2000, "--features", 50, "--density", 0.2, "--out", out)
    assert res.exit_code == 1
    assert _one_error_line(res.stderr) == f"error: {out}: cannot write (no space left on device)"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("command", [["predict", "{run}", "{data}"], ["export", "{run}", "--all"],
                                     ["export", "{run}", "--all", "--format", "csv"]])
def test_predict_and_export_on_a_full_disk_are_one_line_and_keep_the_old_file(tmp_path, monkeypatch, command):
    run, data = tmp_path / "run", os.path.join(os.path.dirname(LINREG), "..", "data", "linreg.libsvm")
    assert _cli("fit", LINREG, "--output", run, "--epochs", 1, "-q").exit_code == 1  # (mse < 1 missed)
    out = tmp_path / ("p.csv" if command[0] == "predict" else "w.csv" if "csv" in command else "w.json")
    out.write_text("old")
    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **kw: _FullDisk(fd, "w") if "w" in mode
                        else real(fd, mode, *a, **kw))
    res = _cli(*[a.format(run=run, data=data) for a in command], "--out", out)
    assert res.exit_code == 1
    assert _one_error_line(res.stderr) == f"error: {out}: cannot write (no space left on device)"
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, "run"])


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress])
def test_compressed_stdin_is_a_data_error_naming_stdin(compress):
    # stdin is opened as /dev/stdin; every message names it <stdin> (this one said /dev/stdin, as an
    # "internal error" ValueError)
    from sparsetrain.io.chunks import open_data

    r, w = os.pipe()
    os.write(w, compress(TEXT[:100]))
    os.close(w)
    saved = os.dup(0)
    os.dup2(r, 0)
    os.close(r)
    try:
        with pytest.raises(DataFormatError, match=r"^<stdin>: compressed data from a pipe is not supported"):
            open_data("/dev/stdin")
    finally:
        os.dup2(saved, 0)
        os.close(saved)


@pytest.mark.parametrize("fmt", ["csv", "vw"])
def test_csv_and_vw_name_a_bad_line_deep_in_a_gz_and_a_truncated_gz(tmp_path, fmt):
    # as the LibSVM readers above: a later chunk of a compressed file, bad text or bad compression
    from sparsetrain.io.csv_reader import load_csv
    from sparsetrain.io.csv_schema import CSVSchema
    from sparsetrain.io.vw_reader import load_vw

    if fmt == "csv":
        lines = [f"{i % 2},{i},v{i % 7}" for i in range(20_000)]
        lines[15_000] = "1,x12,v1"
        schema = CSVSchema(columns=["y", "n1", "c1"], numeric=["n1"], categorical=["c1"], hash_bits=4)
        load, words = (lambda p: load_csv(p, schema, chunk_size=4096)), "column 'n1': 'x12' is not a number"
    else:
        lines = [f"{1 if i % 2 else -1} |a f{i % 9}:{i % 4 + 1}" for i in range(20_000)]
        lines[15_000] = "1 |a f1:xyz"
        load, words = (lambda p: load_vw(p, 4, chunk_size=4096)), "feature 'f1:xyz': the value after ':' is not a number"
    bad = tmp_path / f"bad.{fmt}.gz"
    bad.write_bytes(_gz(("\n".join(lines) + "\n").encode()))
    with pytest.raises(DataFormatError, match="^" + re.escape(f"{bad}:15001: {words}")):
        load(str(bad))
    cut = tmp_path / f"cut.{fmt}.gz"
    whole = _gz(("\n".join(lines[:15_000]) + "\n").encode())
    cut.write_bytes(whole[: len(whole) * 3 // 4])
    with pytest.raises(DataFormatError, match="^" + re.escape(f"{cut}: corrupt or truncated gzip data after line ")):
        load(str(cut))


@pytest.mark.parametrize("name, text, message", [
    ("a.libsvm", b"1 0:1 1:x\xff2\n", r"a.libsvm:1: feature value 'x\xff2' is not a number"),
    ("a.vw", b"1 | x:x\xff2\n", r"a.vw:1: feature 'x:x\xff2': the value after ':' is not a number"),
    ("a.csv", b"y,a\n1,x\xff2\n", r"a.csv:2: column 'a': 'x\xff2' is not a number"),
    ("l.csv", b"y,a\nx\xff2,1\n", r"l.csv:2: label column 'y': 'x\xff2' is not a number"),
    ("q.csv", b'y,a\n"x\xff2,1\n', r"""q.csv:2: column 'y': unterminated quoted field '"x\xff2,1'"""),
    ("c.libsvm", b"1 0:1 1:\x01\xc3\xa9'\n", r"""c.libsvm:1: feature value "\x01é'" is not a number"""),
])
def test_a_byte_that_is_not_utf8_shows_as_one_escape_in_a_message(tmp_path, name, text, message):
    # the token was decoded with backslashreplace and then shown with repr: 'x\\xff2' (each reader's own code)
    (tmp_path / name).write_bytes(text)
    with pytest.raises(DataFormatError) as err:
        if name.endswith(".libsvm"):
            load_libsvm(tmp_path / name)
        elif name.endswith(".vw"):
            load_vw(tmp_path / name)
        else:
            load_csv(tmp_path / name, CSVSchema(header=True, label="y", numeric=["a"]))
    assert str(err.value).startswith(f"{tmp_path / name}:") and message in str(err.value)


def test_a_text_label_value_keeps_its_decoding_and_shows_one_escape():
    # label values are read with the decode's \xNN text (the same label every time); the message shows it once
    value = token_text(b"m\xff", 0, 2)
    assert value == "m\\xff"
    assert third_value(value, ("no", "yes")).startswith(r"label 'm\xff' is a third value")


@pytest.mark.parametrize("name, text, first", [
    ("c.txt", b"y,a,b\n1,2,3\n", "c.txt:1: label 'y,a,b' is not a number"),
    ("v.dat", b"1 |a x y\n0 |a z\n", "v.dat:1: feature '|a' has no ':' between index and value"),
])
def test_another_formats_file_read_as_libsvm_says_it_was_read_as_libsvm(tmp_path, name, text, first):
    # a CSV or VW file of a name that says no format was read as LibSVM: the message said only 'label ...'
    (tmp_path / name).write_bytes(text)
    with pytest.raises(DataFormatError) as err:
        load_libsvm(tmp_path / name)
    assert str(err.value) == (f"{tmp_path / first} (read as LibSVM; CSV/TSV or Vowpal Wabbit data is read as such "
                              "when named .csv, .tsv or .vw, or with data.format)")
    (tmp_path / "x.libsvm").write_bytes(text)  # named LibSVM: no hint; a later line: none either
    (tmp_path / "later.txt").write_bytes(b"1 0:1\n" + text)
    for other in ("x.libsvm", "later.txt"):
        with pytest.raises(DataFormatError) as err:
            load_libsvm(tmp_path / other)
        assert "read as LibSVM" not in str(err.value)

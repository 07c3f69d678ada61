"""The usability audit's findings (session 30): what a user meets on bad input, interruptions and
odd output targets, each through the command line (click's CliRunner) where it can be."""
from __future__ import annotations

import os
import pathlib
import stat

import pytest
from click.testing import CliRunner

from sparsetrain.cli import main
from sparsetrain.fileio import write_atomic

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = str(ROOT / "configs" / "linreg.yaml")


def cli(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- output targets that are not regular files -------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_named_pipe_is_written_into_not_replaced(tmp_path):
    # `--out >(gzip > p.gz)` or `mkfifo p`: renaming a temporary file over the pipe replaced it (and, as
    # root, `--out /dev/stdout` replaced that link for every process; `--out /dev/full` "succeeded")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that the writer's open does not wait
    try:
        write_atomic(str(fifo), "row,prediction\n0,1.5\n")
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        assert os.read(reader, 1 << 16) == b"row,prediction\n0,1.5\n"
    finally:
        os.close(reader)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary left beside it


def test_a_symbolic_link_stays_a_link_and_its_file_gets_the_content(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "preds.csv"
    target.write_text("old\n")
    link = tmp_path / "preds.csv"
    link.symlink_to(target)
    write_atomic(str(link), "new\n")
    assert link.is_symlink() and target.read_text() == "new\n"

"""docs/ARCHITECTURE.md names files by path: each one must exist, so the map stays true."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def _named_paths(text: str) -> set[str]:
    """Back-quoted tokens that look like a file or folder path (``a/b.py``, ``io/``, ``x.py``)."""
    tokens = re.findall(r"`([^`\s]+)`", text)
    return {t for t in tokens if re.fullmatch(r"[\w./-]+", t) and t.endswith((".py", "/", ".md"))}


def _exists(path: str) -> bool:
    """A path from the repository root or from ``sparsetrain/``; a bare file name (as the layer
    table lists a folder's files) anywhere in the package."""
    if any((base / path).exists() for base in (ROOT, ROOT / "sparsetrain")):
        return True
    return "/" not in path.rstrip("/") and any((ROOT / "sparsetrain").rglob(path.rstrip("/")))


def test_every_path_the_architecture_doc_names_exists():
    paths = _named_paths(DOC.read_text())
    assert len(paths) > 30, "the doc should name the files of every layer"
    missing = sorted(p for p in paths if not _exists(p))
    assert not missing, f"docs/ARCHITECTURE.md names files that do not exist: {missing}"


def test_the_check_would_notice_a_missing_file():
    assert not _exists("engines/compiled/no_such_module.py")
    assert "engines/compiled/no_such_module.py" in _named_paths("see `engines/compiled/no_such_module.py`")

"""Regenerate the README's configuration reference from the schema: ``python -m tools.update_readme``."""
from __future__ import annotations

import pathlib
import sys

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def config_section(text: str) -> str:
    """The generated part of ``text`` (the README), between the markers."""
    return text[text.index(START) + len(START):text.index(END)].strip("\n")


def main() -> int:
    from sparsetrain.config import markdown_reference

    text = README.read_text()
    new = text[: text.index(START) + len(START)] + "\n" + markdown_reference().rstrip("\n") + "\n" + text[text.index(END):]
    README.write_text(new)
    print(f"updated {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m sparsetrain.config --markdown`` prints the reference; ``... CONFIG [KEY=VALUE ...]`` the resolved
config."""
from __future__ import annotations

import sys

from ..base import ConfigError
from .load import load_config
from .reference import markdown_reference


USAGE = "usage: python -m sparsetrain.config --markdown | CONFIG [KEY=VALUE ...]\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):  # (it read --help as a config file: 'cannot read config')
        sys.stdout.write(USAGE)
        return 0
    if argv[:1] == ["--markdown"]:
        sys.stdout.write(markdown_reference() + "\n")
        return 0
    if len(argv) >= 1:
        try:
            cfg = load_config(argv[0], argv[1:])
        except ConfigError as e:
            sys.stderr.write(f"error: {e}\n")
            return 2
        sys.stdout.write(cfg.to_yaml())
        return 0
    sys.stderr.write(USAGE)
    return 2


if __name__ == "__main__":
    sys.exit(main())

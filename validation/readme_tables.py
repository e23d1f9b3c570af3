"""Render the README's measured tables from committed CSVs.

README.md holds generated blocks::

    <!-- BEGIN generated:NAME -->
    ...
    <!-- END generated:NAME -->

Each NAME is rendered by ``render() -> str`` in ``validation/tables/NAME.py``: markdown built only from files
under ``validation/results`` (or other committed data), ending with a provenance line (CSV, rows, timing method,
statistic). ``--write`` rewrites README.md atomically; ``--check`` exits 1 naming every stale block.

Usage: ``python validation/readme_tables.py --check|--write [--readme README.md]``
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLES = Path(__file__).resolve().parent / "tables"
BLOCK = re.compile(r"(<!-- BEGIN generated:([A-Za-z0-9_]+) -->\n)(.*?)(<!-- END generated:\2 -->)", re.S)


def render_block(name: str) -> str:
    """Markdown of block ``name`` from ``validation/tables/<name>.py`` (always ends with a newline)."""
    if str(TABLES) not in sys.path:
        sys.path.insert(0, str(TABLES))
    path = TABLES / f"{name}.py"
    if not path.is_file():
        raise SystemExit(f"readme_tables: no renderer {path.relative_to(ROOT)} for block '{name}'")
    spec = importlib.util.spec_from_file_location(f"_fgsim_readme_table_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.render()
    return text if text.endswith("\n") else text + "\n"


def regenerate(text: str) -> tuple[str, list[str]]:
    """The README text with every generated block re-rendered, and the names of blocks that changed."""
    stale: list[str] = []

    def _sub(match: re.Match[str]) -> str:
        name = match.group(2)
        body = render_block(name)
        if body != match.group(3):
            stale.append(name)
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(_sub, text), stale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if any generated block is stale")
    mode.add_argument("--write", action="store_true", help="rewrite the stale blocks in place")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = ap.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    new, stale = regenerate(text)
    if args.check:
        if stale:
            print(f"readme_tables: stale blocks in {args.readme}: {', '.join(stale)} "
                  "(run python validation/readme_tables.py --write)", file=sys.stderr)
            return 1
        return 0
    if stale:
        sys.path.insert(0, str(ROOT))
        from fgsim.fileio import write_text_atomic

        write_text_atomic(args.readme, new)
    print(f"readme_tables: {len(stale)} block(s) rewritten" + (f": {', '.join(stale)}" if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Render the generated tables of README.md and docs/*.md from committed CSVs.

README.md and any page of docs/ hold generated blocks::

    <!-- BEGIN generated:NAME -->
    ...
    <!-- END generated:NAME -->

Each NAME is rendered by ``render() -> str`` in ``validation/tables/NAME.py``: markdown built only from files
under ``validation/results`` (or other committed data), ending with a provenance line (CSV, rows, timing method,
statistic). One renderer may feed blocks in several files. ``--write`` rewrites each file atomically; ``--check``
exits 1 naming every file and stale block. Without ``--file`` both cover README.md and every docs/*.md that holds
a block.

Usage: ``python validation/readme_tables.py --check|--write [--file PATH ...]``
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLES = Path(__file__).resolve().parent / "tables"
DOCS = ROOT / "docs"
#: a marker is a line of its own (a marker quoted inside prose is text)
BEGIN = re.compile(r"^<!-- BEGIN generated:.*$", re.M)
END = re.compile(r"^<!-- END generated:.*$", re.M)
BLOCK = re.compile(r"^(<!-- BEGIN generated:([A-Za-z0-9_]+) -->\n)(.*?)^(<!-- END generated:\2 -->)$", re.S | re.M)


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


def regenerate(text: str, cache: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """The text with every generated block re-rendered, and the names of blocks that changed.

    ``cache`` (name -> markdown) lets several files share one rendering of a block."""
    stale: list[str] = []
    cache = {} if cache is None else cache

    def _sub(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in cache:
            cache[name] = render_block(name)
        body = cache[name]
        if body != match.group(3):
            stale.append(name)
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(_sub, text), stale


def default_files() -> list[Path]:
    """README.md and every ``docs/*.md`` holding at least one generated block."""
    return [ROOT / "README.md"] + [p for p in sorted(DOCS.glob("*.md")) if BEGIN.search(p.read_text(encoding="utf-8"))]


def _name(path: Path) -> str:
    """``path`` relative to the repository when inside it (for messages)."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def marker_error(text: str) -> str | None:
    """Why the markers of ``text`` do not pair into blocks (a BEGIN without its END, misspelt names), or None."""
    n_begin, n_end, n_blocks = len(BEGIN.findall(text)), len(END.findall(text)), len(BLOCK.findall(text))
    if n_begin == n_end == n_blocks:
        return None
    return f"{n_begin} BEGIN and {n_end} END marker(s) but {n_blocks} well-formed block(s)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if any generated block is stale")
    mode.add_argument("--write", action="store_true", help="rewrite the stale blocks in place")
    ap.add_argument("--file", "--readme", dest="files", type=Path, action="append",
                    help="a markdown file to check or write (repeatable; default: README.md and every docs/*.md "
                         "with a generated block)")
    args = ap.parse_args(argv)
    files = args.files or default_files()
    texts: dict[Path, str] = {}
    for path in files:  # every file read and its markers checked before anything is rendered or written
        if not path.is_file():
            print(f"readme_tables: --file {path}: no such file", file=sys.stderr)
            return 2
        texts[path] = path.read_text(encoding="utf-8")
        err = marker_error(texts[path])
        if err:
            print(f"readme_tables: {_name(path)}: {err}", file=sys.stderr)
            return 2
    cache: dict[str, str] = {}
    results = {path: regenerate(text, cache) for path, text in texts.items()}
    stale_files = {path: stale for path, (_, stale) in results.items() if stale}
    if args.check:
        for path, stale in stale_files.items():
            print(f"readme_tables: stale blocks in {_name(path)}: {', '.join(stale)} "
                  "(run python validation/readme_tables.py --write)", file=sys.stderr)
        return 1 if stale_files else 0
    sys.path.insert(0, str(ROOT))
    from fgsim.fileio import write_text_atomic

    for path, stale in stale_files.items():
        write_text_atomic(path, results[path][0])
        print(f"readme_tables: {_name(path)}: {len(stale)} block(s) rewritten: {', '.join(stale)}")
    if not stale_files:
        print(f"readme_tables: {len(files)} file(s), 0 blocks rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())

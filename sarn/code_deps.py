"""Each stage's code dependencies, derived from what it imports.

A stage runs ``python -m sarn <command>``: the command line's own modules, and the module
that does the stage's work (``STAGE_CODE``), which ``sarn/cli.py`` imports in that command's
branch only; report stages also execute a notebook. Their code dependencies are these
modules and every package module they import, read from the sources (:func:`code_files`;
no module is imported, so Snakemake's parse of the workflow stays free of torch), with each
package folder's data files. Snakemake takes the files as inputs; ``python -m sarn code-deps``
writes the same set into dvc.yaml (a folder whose every file is needed is named as the
folder), and a test fails while the two differ. No stage imports this module.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "sarn"

_MODEL_WORK = ("sarn.train.runner", "sarn.checks")
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "raw": ("sarn.data.sources",),
    "preprocess": ("sarn.data.preprocess",),
    "train": _MODEL_WORK,
    "sweep": _MODEL_WORK,
    "effects": _MODEL_WORK,
    "snapshots": _MODEL_WORK,
    "aggregate": ("sarn.report.aggregate",),
    "table3": ("sarn.report.aggregate",),
    "effects_table": ("sarn.report.aggregate",),
    "figure_data": ("sarn.analysis", "sarn.checks"),
    "report_tables": ("sarn.report.notebook", "workflow/notebooks/tables.ipynb"),
    "report_fig4": ("sarn.report.notebook", "workflow/notebooks/fig4.ipynb"),
    "report_fig5": ("sarn.report.notebook", "workflow/notebooks/fig5.ipynb"),
    "report_fig6": ("sarn.report.notebook", "workflow/notebooks/fig6.ipynb"),
    "index": ("sarn.report.index",),
}
# The command line itself; of sarn/cli.py only the imports at its top level count (each
# command's own work is imported in its branch and named in STAGE_CODE).
_COMMAND_LINE = "sarn.__main__"
_DISPATCHER = "sarn.cli"


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The source file of package module ``name`` (None if it is not a module of the package)."""
    base = root / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parents(name: str) -> list[str]:
    """``sarn.a.b`` → ``sarn``, ``sarn.a``: the packages whose ``__init__`` an import runs."""
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def _imported(source: str, module: str, top_level_only: bool, is_package: bool = False) -> set[str]:
    """Package modules named by the import statements of ``source`` (the text of ``module``, a
    package's ``__init__`` when ``is_package``: its relative imports start from itself)."""
    tree = ast.parse(source)
    nodes = tree.body if top_level_only else ast.walk(tree)
    package = module if is_package else module.rsplit(".", 1)[0]
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name == PACKAGE or name.startswith(PACKAGE + ".")}


def _notebook_source(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")


def code_files(stage: str, root: Path = ROOT) -> list[str]:
    """Every file of the package that ``stage`` runs, relative to ``root``, sorted: the modules
    reachable from the command line and from the stage's work, and their folders' data files."""
    todo = [_COMMAND_LINE]
    for entry in STAGE_CODE[stage]:
        if entry.endswith(".ipynb"):
            todo += _imported(_notebook_source(root / entry), PACKAGE, top_level_only=False)
        else:
            todo.append(entry)
    seen: dict[str, Path] = {}
    while todo:
        for module in [*_parents(name := todo.pop()), name]:
            if module in seen or (path := module_file(module, root)) is None:
                continue
            seen[module] = path
            todo += _imported(path.read_text(encoding="utf-8"), module, top_level_only=module == _DISPATCHER,
                              is_package=path.name == "__init__.py")
    files = set(seen.values())
    files |= {data for folder in {path.parent for path in files} for data in folder.iterdir()
              if data.is_file() and data.suffix not in (".py", ".pyc")}
    return sorted(str(path.relative_to(root)) for path in files)


def _folder_files(folder: Path, root: Path) -> set[str]:
    """The files of a folder and its subfolders, caches left out."""
    return {str(path.relative_to(root)) for path in folder.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}


def compact(files: Iterable[str], root: Path = ROOT) -> list[str]:
    """``files`` with every folder whose files are all among them named as the folder instead
    (the outermost such folders): DVC's ``deps`` for the same set."""
    wanted = set(files)
    folders = sorted({parent for f in wanted for parent in Path(f).parents if parent != Path(".")},
                     key=lambda p: len(p.parts))
    whole: list[Path] = []
    for folder in folders:
        if not any(folder.is_relative_to(w) for w in whole) and _folder_files(root / folder, root) <= wanted:
            whole.append(folder)
    return sorted({str(w) for w in whole}
                  | {f for f in wanted if not any(Path(f).is_relative_to(w) for w in whole)})


_STAGE_LINE = re.compile(r"^  ([A-Za-z0-9_]+):\s*$")
_DEPS_LINE = re.compile(r"^(\s+)deps:\s*$")


def _is_code(dep: str) -> bool:
    return dep.startswith(f"{PACKAGE}/") or dep == PACKAGE or dep.endswith(".ipynb")


def stage_deps(stage: str, root: Path = ROOT) -> list[str]:
    """The code entries of ``stage``'s ``deps`` in dvc.yaml: its notebook, then its package files."""
    notebooks = [entry for entry in STAGE_CODE[stage] if entry.endswith(".ipynb")]
    return notebooks + compact(code_files(stage, root), root)


def rewrite_dvc_deps(text: str, root: Path = ROOT) -> str:
    """dvc.yaml with each stage's code entries of ``deps`` replaced by :func:`stage_deps`, after
    its data entries; everything else (comments, order, layout) as it was."""
    lines, out = text.splitlines(keepends=True), []
    stage, k = None, 0
    while k < len(lines):
        line = lines[k]
        if match := _STAGE_LINE.match(line):
            stage = match.group(1)
        deps = _DEPS_LINE.match(line)
        out.append(line)
        k += 1
        if not deps or stage not in STAGE_CODE:
            continue
        item = f"{deps.group(1)}  - "
        entries = []
        while k < len(lines) and lines[k].startswith(item):
            entries.append(lines[k][len(item):].strip())
            k += 1
        kept = [entry for entry in entries if not _is_code(entry)] + stage_deps(stage, root)
        out += [f"{item}{entry}\n" for entry in kept]
    return "".join(out)

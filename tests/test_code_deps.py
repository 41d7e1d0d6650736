"""Each stage's code dependencies come from what it imports, and dvc.yaml says the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sarn.code_deps import STAGE_CODE, code_files, compact, rewrite_dvc_deps, stage_deps
from sarn.stages import STAGE_PARAMS
from tests.conftest import ROOT


def test_dvc_yaml_lists_the_code_each_stage_imports() -> None:
    text = (ROOT / "dvc.yaml").read_text()
    assert rewrite_dvc_deps(text) == text, "run `python -m sarn code-deps` to write them"


def test_every_stage_with_params_has_its_code_derived() -> None:
    assert set(STAGE_PARAMS) <= set(STAGE_CODE)


def test_a_stage_depends_on_its_work_and_not_on_other_stages_work() -> None:
    train, raw = set(code_files("train")), set(code_files("raw"))
    assert {"sarn/train/loop.py", "sarn/models/sarn.py", "sarn/nn/relation.py", "sarn/checks.py",
            "sarn/cli.py", "sarn/params.py"} <= train
    assert "sarn/report/aggregate.py" not in train
    assert not any(f.startswith(("sarn/models", "sarn/nn", "sarn/train")) for f in raw)
    aggregate = set(code_files("aggregate"))
    assert "sarn/report/paper.yaml" in aggregate  # a module's data file counts
    assert not any(f.startswith(("sarn/models", "sarn/nn")) for f in aggregate)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_imports_are_followed_through_packages_functions_and_notebooks(tmp_path, monkeypatch) -> None:
    root = _package(tmp_path, {
        "sarn/__init__.py": "", "sarn/__main__.py": "from sarn.cli import main\n",
        "sarn/cli.py": "import sarn.base\ndef run():\n    from sarn.work import go\n",
        "sarn/base.py": "", "sarn/work.py": "import sarn.pkg\ndef go():\n    from sarn.sub import leaf\n",
        "sarn/pkg/__init__.py": "from .inner import f\n", "sarn/pkg/inner.py": "",  # relative to the package
        "sarn/sub/__init__.py": "", "sarn/sub/leaf.py": "from . import table\n", "sarn/sub/table.yaml": "a: 1\n",
        "sarn/sub/table.py": "", "sarn/unused.py": "",
        "book.ipynb": json.dumps({"cells": [{"cell_type": "code", "source": ["from sarn.base import x\n"]},
                                            {"cell_type": "markdown", "source": ["import sarn.unused"]}]}),
    })
    monkeypatch.setitem(STAGE_CODE, "mine", ("sarn.work",))
    monkeypatch.setitem(STAGE_CODE, "book", ("book.ipynb",))
    assert code_files("mine", root) == [
        "sarn/__init__.py", "sarn/__main__.py", "sarn/base.py", "sarn/cli.py", "sarn/pkg/__init__.py",
        "sarn/pkg/inner.py", "sarn/sub/__init__.py",
        "sarn/sub/leaf.py", "sarn/sub/table.py", "sarn/sub/table.yaml", "sarn/work.py"]
    # the command line's branches import each command's work: only its top level counts
    assert "sarn/work.py" not in code_files("book", root)
    assert stage_deps("mine", root)[-2:] == ["sarn/sub", "sarn/work.py"]  # a whole folder by its name
    assert compact(["sarn/base.py"], root) == ["sarn/base.py"]


def test_the_writer_replaces_code_entries_and_keeps_the_rest(tmp_path, monkeypatch) -> None:
    root = _package(tmp_path, {"sarn/__init__.py": "", "sarn/__main__.py": "import sarn.cli\n", "sarn/cli.py": "",
                               "sarn/work.py": "", "sarn/other.py": ""})
    monkeypatch.setitem(STAGE_CODE, "mine", ("sarn.work",))
    text = ("stages:\n  mine:\n    cmd: x  # keep me\n    deps:\n      - data/in\n      - sarn/old.py\n"
            "    outs:\n      - out\n  other:\n    deps:\n      - sarn/old.py\n")
    assert rewrite_dvc_deps(text, root) == (
        "stages:\n  mine:\n    cmd: x  # keep me\n    deps:\n      - data/in\n      - sarn/__init__.py\n"
        "      - sarn/__main__.py\n      - sarn/cli.py\n      - sarn/work.py\n    outs:\n      - out\n"
        "  other:\n    deps:\n      - sarn/old.py\n")
    (root / "sarn" / "other.py").unlink()  # now the whole folder is needed: named as the folder
    assert "      - data/in\n      - sarn\n    outs" in rewrite_dvc_deps(text, root)


@pytest.mark.parametrize("stage", sorted(STAGE_CODE))
def test_every_stage_entry_exists(stage: str) -> None:
    for entry in STAGE_CODE[stage]:
        assert (ROOT / entry).is_file() if entry.endswith(".ipynb") else \
            (ROOT / Path(*entry.split("."))).with_suffix(".py").is_file()

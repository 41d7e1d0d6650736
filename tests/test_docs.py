"""The README and docs/ as a reader follows them: links resolve, commands exist, the tests that
the reliability page cites are real, and no page sends a reader outside the repository."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from sarn.cli import _parser
from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _commands() -> set[str]:
    sub = next(a for a in _parser()._actions if a.dest == "command")
    return set(sub.choices)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve()
        assert resolved.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and resolved.suffix == ".md":
            headings = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
                        for h in re.findall(r"^#+ (.+)$", resolved.read_text(encoding="utf-8"), re.MULTILINE)}
            assert anchor in headings, f"{page.name} links to #{anchor}, not a heading of {path}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_named_is_a_real_one(page: Path) -> None:
    """A command named is one of the CLI's; one quoted with its arguments would run as written (its
    arguments parse), whether inline or in a code block."""
    text = page.read_text(encoding="utf-8")
    named = set(re.findall(r"python -m sarn\s+([a-z][a-z0-9-]*)", text))
    assert named <= _commands(), f"{page.name} names commands that do not exist: {named - _commands()}"
    quoted = re.findall(r"`(?:\.venv/bin/)?python -m sarn\s+([^`]*)`", text)
    shell = "\n".join(body for language, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
                      if language in ("", "bash", "sh"))
    quoted += re.findall(r"^(?:\.venv/bin/)?python -m sarn[ \t]+(.*)$", shell, re.MULTILINE)
    for command in quoted:
        args = shlex.split(command.split(" #")[0])
        if len(args) > 1:
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err):
                    _parser().parse_args(args)
            except SystemExit:
                pytest.fail(f"{page.name}: `python -m sarn {command}` does not run: {err.getvalue().strip()}")


def test_the_tests_the_reliability_page_cites_exist() -> None:
    cited = set(re.findall(r"`(test_[a-z0-9_]+)`", (ROOT / "docs" / "reliability.md").read_text()))
    defined = set(re.findall(r"^def (test_\w+)", "\n".join(p.read_text() for p in (ROOT / "tests").glob("*.py")),
                             re.MULTILINE))
    assert cited and cited <= defined, cited - defined


def test_the_readme_stays_the_front_door() -> None:
    assert (ROOT / "README.md").stat().st_size < 10_240


def test_no_file_sends_a_reader_to_the_development_folders() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    offenders = [name for name in tracked.split()
                 if not name.startswith(("tests/", ".ci/")) and (ROOT / name).is_file()
                 and "../shared" in (ROOT / name).read_text(encoding="utf-8", errors="ignore")]
    assert not offenders


def test_the_documented_switch_to_the_papers_datasets_is_whole_and_valid() -> None:
    """The README's switch and reproducing.md's are the same keys, and params.yaml with them applied
    passes ``python -m sarn check``: no half-made switch that leaves a stage on data none builds."""
    from sarn.checks import check_models
    from sarn.params import validate

    blocks = [re.search(rf"^## {heading}[^\n]*\n.*?```yaml\n(.*?)```", page.read_text(encoding="utf-8"),
                        re.MULTILINE | re.DOTALL).group(1)
              for page, heading in [(ROOT / "README.md", "The paper's datasets"),
                                    (ROOT / "docs" / "reproducing.md", "The switch")]]
    switches = [yaml.safe_load(block) for block in blocks]
    assert switches[0] == switches[1]
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    for section, values in switches[0].items():
        raw[section].update(values)
    assert raw["experiment"]["datasets"] == ["electronics", "books", "taobao"]
    check_models(validate(raw))

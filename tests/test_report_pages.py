"""The report as a reader opens it: every link and image resolves, and in a browser the page
shows Table II and its figures without scrolling past the parameters."""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sarn.cli import main
from tests.conftest import ROOT, tiny_params

PAGES = ("index.html", "tables.html", "fig4.html", "fig5.html", "fig6.html")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A tiny project whose stages all ran, in order, as the drivers run them."""
    root = tmp_path_factory.mktemp("report")
    shutil.copytree(ROOT / "workflow", root / "workflow")
    shutil.copytree(ROOT / "docs", root / "docs")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    raw = tiny_params()
    fig = raw["plots"]

    def style(name: str) -> list[str]:
        return [arg for k, v in fig[name].items() for arg in ("--param", f"{k}={v}")]

    data = "data/processed/default"
    commands = [["raw", "--dataset", "default", "--out", "data/raw/default"],
                ["preprocess", "--dataset", "default", "--raw", "data/raw/default", "--out", data]]
    commands += [["train", "--dataset", "default", "--model", m, "--data", data, "--out", f"results/table2/default/{m}"]
                 for m in raw["experiment"]["models"]]
    commands += [["sweep", "--dataset", "default", "--model", m, "--max-len", "5", "--data", data,
                  "--out", f"results/table3/default/{m}/len5"] for m in raw["table3"]["models"]]
    commands += [["effects", "--dataset", "default", "--model", m, "--data", data, "--out", f"results/effects/default/{m}"]
                 for m in raw["protocol_effects"]["models"]]
    commands += [
        ["aggregate", "--results", "results/table2", "--table", "reports/table2.csv", "--metrics",
         "reports/metrics.json", "--curves", "reports/curves"],
        ["table3", "--results", "results/table3", "--table", "reports/table3.csv"],
        ["effects-table", "--results", "results/effects", "--baseline", "results/table2", "--table",
         "reports/effects.csv"],
        ["snapshots", "--data", data, "--out", "results/figures/snapshots"],
        ["figure-data", "--data", data, "--snapshots", "results/figures/snapshots", "--out", "reports/figures/data"],
        ["report", "--notebook", "workflow/notebooks/tables.ipynb", "--param", "table2_path=reports/table2.csv",
         "--param", "table3_path=reports/table3.csv", "--param", "effects_path=reports/effects.csv",
         "--param", "results_root=results/table2", "--param", "processed_root=data/processed",
         "--out", "reports/tables.ipynb", "--html", "reports/tables.html"],
        ["report", "--notebook", "workflow/notebooks/fig4.ipynb", "--param", "curves_root=reports/curves",
         "--param", "table2_path=reports/table2.csv", "--param", "with_model=sarn", "--param",
         "without_model=sarn_no_pos", "--param", "out_dir=reports/figures", *style("fig4"),
         "--out", "reports/fig4.ipynb", "--html", "reports/fig4.html"],
        *(["report", "--notebook", f"workflow/notebooks/{n}.ipynb", "--param", "data_dir=reports/figures/data",
           "--param", "out_dir=reports/figures", *style(n), "--out", f"reports/{n}.ipynb", "--html", f"reports/{n}.html"]
          for n in ("fig5", "fig6")),
        ["index", "--reports", "reports", "--processed", "data/processed"],
    ]
    cwd = Path.cwd()
    try:
        import os

        os.chdir(root)
        for argv in commands:
            assert main(argv) == 0, argv
    finally:
        os.chdir(cwd)
    return root


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name, tag) in (("href", "a"), ("src", "img"), ("href", "link"), ("src", "script")):
                self.targets.append(value)


def _local(target: str) -> bool:
    return not re.match(r"^([a-z]+:|#|//)", target)


@pytest.mark.parametrize("page", PAGES)
def test_every_link_and_image_of_the_report_resolves(project: Path, page: str) -> None:
    path = project / "reports" / page
    links = _Links()
    links.feed(path.read_text(encoding="utf-8"))
    local = [t.split("#")[0] for t in links.targets if _local(t)]
    assert page != "index.html" or len(local) > 15  # the index does link its tables, figures and data
    missing = [t for t in local if not (path.parent / t).exists()]
    assert not missing, f"{page} links to files that do not exist: {missing}"
    remote = [t for t in links.targets if re.match(r"^(https?:)?//", t) and page == "index.html"]
    assert not remote, f"the index needs the network for {remote}"


def test_the_report_shows_no_path_of_the_machine_it_ran_on(project: Path) -> None:
    for path in [*(project / "reports").glob("*.html"), *(project / "reports").glob("*.ipynb")]:
        text = path.read_text(encoding="utf-8")
        for private in (str(project), str(Path.home()), str(ROOT)):
            assert private not in text, (path.name, private)


_BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

# Appended to a copy of the index beside it: after the page (and its images) loaded, it writes
# what a reader sees into the page, which the browser then prints.
_PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const table = document.querySelector("#table2 + table");
  const params = document.querySelector("details");
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src")),
    table2_top: table ? table.getBoundingClientRect().top : null,
    table2_text: table ? table.innerText : "",
    viewport: window.innerHeight,
    params_open: params ? params.open : null,
  });
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.skipif(_BROWSER is None, reason="no Chromium on this machine (Debian: apt-get install chromium)")
def test_the_index_in_a_browser_shows_table2_and_every_figure(project: Path, tmp_path: Path) -> None:
    reports = project / "reports"
    probe = reports / "index-probe.html"
    probe.write_text((reports / "index.html").read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"))
    try:
        proc = subprocess.run(
            [_BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000", "--virtual-time-budget=10000",
             "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=120, check=False)
    finally:
        probe.unlink()
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert found, f"the page never finished loading: {proc.stderr[-2000:]}"
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["images"] == 4 and seen["broken"] == [], seen
    assert "sarn" in seen["table2_text"] and "AUC" in seen["table2_text"]
    assert seen["table2_top"] < seen["viewport"], "Table II is below the first screen"
    assert seen["params_open"] is False, "the parameters are not folded"

"""The comparison report: table and HTML are pure renderings of the document; the HTML and the PNG
open in headless Chromium with no network and show something (non-uniform pixels, the DOM)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from modelroute.api.evaluation import RevisionComparison
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.sidecar.eval import compare_report
from modelroute.sidecar.eval.compare import build
from modelroute.sidecar.eval.dataset import Case
from modelroute.sidecar.eval.revisions import Answered, Revision, RevisionRun
from modelroute.sidecar.eval.scoring import Outcome

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9")


def _route(model: str) -> ModelRoute:
    return ModelRoute.model_validate({"metadata": {"name": "tickets"}, "spec": {"route": "classify", "targets": [
        {"name": "t", "provider": "openai-compatible", "model": model, "baseUrl": "http://127.0.0.1:9/v1",
         "pricing": {"inputPerMillion": 1, "outputPerMillion": 4}}]}})


def _doc(n: int = 40) -> RevisionComparison:
    cases = [Case(f"c{i}", {"messages": [{"role": "user", "content": f"<b>ticket {i}</b>"}]}, "billing") for i in range(n)]
    runs = []
    for role, model, wrong in (("baseline", "small", 3), ("candidate", "large", 7)):
        run = RevisionRun(Revision(role, f"{role}.yaml", _route(model)))
        for i, c in enumerate(cases):
            ok = i % wrong != 0
            out = "billing" if ok else "<script>alert(1)</script>"
            run.answers[c.id] = Answered(Outcome(c.id, out, 0.01 + 0.001 * (i % 9) * (2 if role == "candidate" else 1), 30, 2,
                                                 exact=ok, valid=ok), "t", 0.0001)
        runs.append(run)
    return build("classify", "golden.jsonl", cases, runs[0], runs[1])


def test_table_and_html_are_renderings_of_the_document() -> None:
    doc = _doc()
    text = compare_report.table(doc)
    assert text.splitlines()[1].split()[:3] == ["baseline", "openai-compatible/small", "65.0%"]
    assert f"verdict: {doc.comparison.message}" in text and "cases answered differently" in text
    page = compare_report.html_report(doc)
    assert page.count("<svg") == 4 and "<script>" not in page and "&lt;script&gt;" in page
    assert not re.search(r"""(src|href)\\s*=\\s*["']?(https?:|//)""", page) and "@import" not in page and "url(" not in page


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: hack/node-deps installs it")
        pytest.skip("chromium is not installed (hack/node-deps installs it)")
    return path


def _open(chromium: str, url: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *extra, url],
                          capture_output=True, text=True, timeout=120, check=True, cwd=tmp)


def _non_uniform(png: Path) -> int:
    img = Image.open(png).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20)
    assert colours is not None
    return len(colours)


def test_html_and_png_open_in_headless_chromium_offline(tmp_path: Path) -> None:
    chromium = _chromium()
    doc = _doc()
    html_path, png_path = tmp_path / "report.html", tmp_path / "report.png"
    html_path.write_text(compare_report.html_report(doc), encoding="utf-8")
    compare_report.write_png(doc, png_path)
    assert Image.open(png_path).size == (1200, 700) and _non_uniform(png_path) > 50

    dom = _open(chromium, html_path.as_uri(), tmp_path, "--dump-dom").stdout
    assert f'data-verdict="{doc.comparison.verdict.value}"' in dom
    for chart in ("chart-accuracy", "chart-difference", "chart-latency", "chart-cost"):
        assert f'id="{chart}"' in dom
    assert dom.count('class="ci"') == 3 and "<td>c3</td>" in dom and "<td>c0</td>" not in dom, "c0: both wrong alike"

    shot = tmp_path / "html.png"
    _open(chromium, html_path.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1000,1200")
    assert _non_uniform(shot) > 50, "the page renders text and charts, not a blank"

    dom = _open(chromium, png_path.as_uri(), tmp_path, "--dump-dom").stdout
    assert "<img" in dom
    shot = tmp_path / "png.png"
    _open(chromium, png_path.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1200,700")
    assert _non_uniform(shot) > 50


def test_the_png_draws_a_revision_that_got_every_case_right(tmp_path: Path) -> None:
    """Regression: at exact match 1.0 the Wilson bound was 0.9999999999999998 and matplotlib refused the error bar."""
    doc = _doc()
    perfect = doc.candidate.model_copy(update={"exact_match": 1.0, "exact_match_ci_low": 0.9124, "exact_match_ci_high": 1.0 - 2e-16})
    compare_report.write_png(doc.model_copy(update={"candidate": perfect}), str(tmp_path / "perfect.png"))
    assert _non_uniform(tmp_path / "perfect.png") > 10

"""report.html: self-contained, every figure present, and clean in a headless browser."""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sqnn.errors import SqnnError
from sqnn.report import build_report

CHROMIUM = Path("/usr/bin/chromium")
IMAGE = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')
SECTIONS = ("ROC curves", "Score distributions", "Trade-off", "Training history", "Information plane")


@pytest.fixture(scope="module")
def report(comparison: Path) -> Path:
    return build_report(comparison)


def test_report_embeds_every_figure(report: Path) -> None:
    text = report.read_text()
    images = IMAGE.findall(text)
    assert [alt for alt, _ in images] == ["ROC curves", "Score distributions", "Trade-off", "Training history", "Information plane"]
    for alt, encoded in images:
        picture = Image.open(io.BytesIO(base64.b64decode(encoded)))
        assert picture.format == "PNG" and picture.size[0] > 300 and picture.size[1] > 300, alt
        pixels = np.asarray(picture.convert("L"), dtype=float)
        assert pixels.std() > 5, f"{alt} is blank"


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text()
    assert "<script" not in text
    assert not re.search(r'(src|href)="(?!data:)', text)
    assert text.count("<img") == len(IMAGE.findall(text))


def test_report_tables_show_every_method_and_the_selection(report: Path, comparison: Path) -> None:
    import json

    summary = json.loads((comparison / "summary.json").read_text())
    text = report.read_text()
    for method in ("source-only", "sqnn", "bdt"):
        assert f"<td>{method}</td>" in text
    assert text.count('<tr class="selected">') == 3
    mean = summary["sqnn"]["selected"]["metrics"]["auc_target"]["mean"]
    assert f"{mean:.4f}" in text
    assert html.escape(summary["selection_rule"]) in text


def test_missing_summary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SqnnError, match="summary.json: missing"):
        build_report(tmp_path)


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless check needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    url = report.resolve().as_uri()
    dom = _chromium(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert console == []
    assert len(IMAGE.findall(dom.stdout)) == 5
    assert all(section in dom.stdout for section in SECTIONS)

    # the same page with every image emptied: the figures must darken the real one far more
    stripped = tmp_path / "stripped.html"
    stripped.write_text(IMAGE.sub(lambda m: f'<img alt="{m.group(1)}" src="data:image/png;base64,">', report.read_text()))
    dark = {}
    for name, page in (("report", report), ("stripped", stripped)):
        shot = tmp_path / f"{name}.png"
        screen = _chromium(
            ["--hide-scrollbars", "--window-size=1400,3000", f"--screenshot={shot}", page.resolve().as_uri()],
            tmp_path / f"profile-{name}",
        )
        assert screen.returncode == 0 and shot.exists(), screen.stderr[-2000:]
        dark[name] = float((np.asarray(Image.open(shot).convert("L"), dtype=float) < 200).mean())
        shutil.rmtree(tmp_path / f"profile-{name}", ignore_errors=True)
    assert dark["report"] > 1.5 * dark["stripped"] + 0.01, dark


def test_closure_study_section_plots_the_multi_seed_families_and_marks_the_choice() -> None:
    from sqnn.workflows.selection import aggregate
    from sqnn.report.studies import closure_study_page

    def setting(family: str, name: str, gamma: float, auc: float, sf_b: float, seeds: int) -> dict:
        runs = [{"auc_source": 0.91, "auc_target": auc + 0.001 * k, "sf_signal": 0.95, "sf_background": sf_b,
                 "closure": 0.05 + abs(1 - sf_b), "sf_signal_80": 0.99, "sf_background_80": 1.1, "closure_80": 0.11,
                 "ks_signal": 0.04, "ks_background": 0.05, "ks_control": 0.03} for k in range(seeds)]
        return {"family": family, "setting": name, "gamma": gamma, "seeds": seeds, "metrics": aggregate(runs)}

    settings = [setting("sqnn", "sqnn γ=1", 1.0, 0.90, 1.01, 3), setting("sqnn", "sqnn γ=2", 2.0, 0.89, 1.0, 3),
                setting("dann", "dann λ=1", 1.0, 0.90, 1.4, 3), setting("idea", "idea γ=1", 1.0, 0.88, 1.0, 1)]
    study = {"settings": settings, "selected": {"sqnn": settings[0], "dann": settings[2], "idea": settings[3]}}
    page = closure_study_page(study)
    assert page.count("<img") == 1 and "<h2>Closure study</h2>" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert Image.open(io.BytesIO(base64.b64decode(images[0]))).size[0] > 500
    assert page.count('<tr class="selected">') == 3 and page.count("<tr") == 5  # header + 4 settings
    assert "idea γ=1" in page

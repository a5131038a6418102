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
FIGURES = ["Scale factors", "Trade-off", "Score distributions: source-only", "Score distributions: sqnn γ=0.3",
           "Score distributions: bdt", "ROC curves", "Training history", "Information plane"]
SECTIONS = ("Chosen setting per method", "Scale factors across working points", "Closure and accuracy across each sweep",
            "Score distributions per class", "ROC curves", "Training history", "Information plane of the stochastic layer",
            "Every setting")
# a 1400-pixel window holds every figure at its own size
PAGE_WIDTH = 1400


@pytest.fixture(scope="module")
def report(comparison: Path) -> Path:
    return build_report(comparison)


def test_report_embeds_every_figure_within_a_1400_pixel_page(report: Path, comparison: Path) -> None:
    import json

    text = report.read_text()
    images = IMAGE.findall(text)
    summary = json.loads((comparison / "summary.json").read_text())
    chosen = f"Score distributions: sqnn γ={summary['sqnn']['selected']['gamma']:g}"
    assert [alt for alt, _ in images] == [chosen if alt.startswith("Score distributions: sqnn") else alt for alt in FIGURES]
    for alt, encoded in images:
        picture = Image.open(io.BytesIO(base64.b64decode(encoded)))
        assert picture.format == "PNG" and 300 < picture.size[0] <= PAGE_WIDTH - 80 and picture.size[1] > 250, alt
        pixels = np.asarray(picture.convert("L"), dtype=float)
        assert pixels.std() > 5, f"{alt} is blank"
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in text


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text()
    assert "<script" not in text
    assert not re.search(r'(src|href)="(?!data:)', text)
    assert text.count("<img") == len(IMAGE.findall(text))


def test_report_tables_show_every_method_the_selection_and_uncertainties(report: Path, comparison: Path) -> None:
    import json

    summary = json.loads((comparison / "summary.json").read_text())
    text = report.read_text()
    for method in ("source-only", "sqnn", "bdt"):
        assert f"<td>{method}</td>" in text
    # the chosen rows of the table of every setting
    assert text.count('<tr class="selected">') == 3
    stats = summary["sqnn"]["selected"]["metrics"]["auc_target"]
    # two seeds: the standard error of the mean, spread/√2, under the value
    assert f'{stats["mean"]:.4f}<br><span class="err">± {stats["std"] / np.sqrt(2):.4f}</span>' in text
    closure = summary["sqnn"]["selected"]["metrics"]["closure_80"]
    assert f'{closure["mean"]:.3f}<br><span class="err">± {closure["std"] / np.sqrt(2):.3f}</span>' in text
    assert "standard error over the 2 seeds" in text and "standard deviation" not in text
    assert "within 0.005 of the method&#x27;s best" in text and "smallest ks_control" in text


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


# appended to a copy of the page by the test only: the report itself has no script
_PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.setAttribute("data-probe", JSON.stringify({
    scrollWidth: document.documentElement.scrollWidth,
    loaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    images: images.length,
    widest: Math.max(...images.map(i => i.getBoundingClientRect().right)),
  }));
});
</script>"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless check needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    import json

    url = report.resolve().as_uri()
    dom = _chromium(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert console == []
    assert len(IMAGE.findall(dom.stdout)) == len(FIGURES)
    assert all(section in dom.stdout for section in SECTIONS)

    # in a 1400-pixel window: every image decoded, nothing wider than the window
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text().replace("</body>", _PROBE + "</body>"))
    dom = _chromium([f"--window-size={PAGE_WIDTH},3000", "--virtual-time-budget=5000", "--dump-dom", probed.resolve().as_uri()],
                    tmp_path / "profile-probe")
    match = re.search(r'data-probe="([^"]+)"', dom.stdout)
    assert match, dom.stderr[-2000:]
    probe = json.loads(html.unescape(match.group(1)))
    assert probe["images"] == probe["loaded"] == len(FIGURES), probe
    assert probe["scrollWidth"] <= PAGE_WIDTH and probe["widest"] <= PAGE_WIDTH, probe

    # the same page with every image emptied: the figures must darken the real one far more
    stripped = tmp_path / "stripped.html"
    stripped.write_text(IMAGE.sub(lambda m: f'<img alt="{m.group(1)}" src="data:image/png;base64,">', report.read_text()))
    dark = {}
    for name, page in (("report", report), ("stripped", stripped)):
        shot = tmp_path / f"{name}.png"
        screen = _chromium(
            ["--hide-scrollbars", f"--window-size={PAGE_WIDTH},3000", f"--screenshot={shot}", page.resolve().as_uri()],
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

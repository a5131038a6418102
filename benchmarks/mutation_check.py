"""Do the fast metric tests catch small plausible bugs in the metrics? Mutation testing by hand.

Each mutation is one (file, original snippet, mutated snippet) edit of the kind a referee fears:
swapped operands, an off-by-one in a cut, ≥ for >, a missing square, the effective count
replaced by the plain count, a dropped weight, a wrong sign. One at a time, it is applied to a
temporary copy of ``src/``, and the fast metric tests run against that copy (``PYTHONPATH``
pointing at it); a mutation is caught when at least one test fails. The unmutated copy must
pass first. Writes, for every mutation, the tests that failed (none: it survived), and exits
non-zero if any survived.

    python benchmarks/mutation_check.py [--out benchmarks/results/mutation_check.json] [--only NAME ...]

Not listed, because no test can tell them apart from the code as it is (the numbers are the
same): the KS CDF taken left-continuous (``side="left"``: the supremum over the jump points is
then the one at the previous jump point, the same set of differences), and EM returning the
previous iterate instead of the last one (they differ by less than the 1e-7 stopping step).
"""

from __future__ import annotations

import argparse
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS = (
    "tests/test_metrics.py",
    "tests/test_priors.py",
    "tests/test_evaluation_metrics.py",
    "tests/test_metrics_properties.py",
)
# the domain probe's tests take seconds and no mutation below touches the probe
DESELECT = "not domain_probe"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to src/sqnn
    original: str
    mutated: str


METRICS, PRIORS, EVALUATION = "metrics.py", "priors.py", "evaluation.py"
SF_RELATIVE = "math.hypot(err_data / eff_data if eff_data > 0 else 0.0, err_sim / eff_sim)"
N_EFF = "n_eff = total**2 / float((weight**2).sum())"
WP_INDEX = "index = min(index, s.size - 1)"
WP_CUMULATIVE = "cumulative = np.cumsum(w[order]) / w.sum()"
AUC_VARIANCE = "(n_s - 1) * (q1 - auc * auc) + (n_b - 1) * (q2 - auc * auc)"
EM_WEIGHTS = "w = w / w.sum().clamp(min=1e-12)"
EM_STEP = "new = float((w * posterior).sum().clamp(*PRIOR_BOUNDS))"
CLOSURE = 'abs(1 - result[f"sf_signal{suffix}"]) + abs(1 - result[f"sf_background{suffix}"])'
SF_LOOP = 'for cls, name in ((1, "signal"), (0, "background")):\n                sf, err'

MUTATIONS = (
    # the statistical error of a scale factor
    Mutation("sf error: data term relative to the simulated efficiency", METRICS, SF_RELATIVE,
             "math.hypot(err_data / eff_sim if eff_data > 0 else 0.0, err_sim / eff_sim)"),
    Mutation("sf error: relative errors added linearly", METRICS, SF_RELATIVE,
             "(err_data / eff_data if eff_data > 0 else 0.0) + err_sim / eff_sim"),
    Mutation("sf error: simulation term dropped", METRICS, SF_RELATIVE,
             "math.hypot(err_data / eff_data if eff_data > 0 else 0.0, 0.0)"),
    Mutation("sf error: data term dropped", METRICS, SF_RELATIVE, "math.hypot(0.0, err_sim / eff_sim)"),
    Mutation("sf error: relative error not scaled by sf", METRICS, "return sf, abs(sf) * relative", "return sf, relative"),
    Mutation("sf error: absolute errors in quadrature", METRICS, "return sf, abs(sf) * relative",
             "return sf, math.hypot(err_data, err_sim)"),
    Mutation("sf error: sign of sf kept", METRICS, "return sf, abs(sf) * relative", "return sf, sf * relative"),
    Mutation("sf error: guard eff_data >= 0", METRICS, "err_data / eff_data if eff_data > 0", "err_data / eff_data if eff_data >= 0"),
    Mutation("sf: ratio inverted", METRICS, "sf = eff_data / eff_sim", "sf = eff_sim / eff_data"),
    Mutation("sf: simulation cut score > threshold", METRICS, "efficiency(sim_score[sim_mask] >= working_point.threshold",
             "efficiency(sim_score[sim_mask] > working_point.threshold"),
    Mutation("sf: data cut score > threshold", METRICS, "efficiency(data_score[data_mask] >= working_point.threshold",
             "efficiency(data_score[data_mask] > working_point.threshold"),
    # efficiencies and their binomial errors
    Mutation("efficiency: plain count for the effective count", METRICS, N_EFF, "n_eff = float(weight.size)"),
    Mutation("efficiency: total not squared", METRICS, N_EFF, "n_eff = total / float((weight**2).sum())"),
    Mutation("efficiency: weights not squared", METRICS, N_EFF, "n_eff = total**2 / float(np.abs(weight).sum())"),
    Mutation("efficiency: passing fraction unweighted", METRICS, "eff = float(weight[passed].sum() / total)",
             "eff = float(np.mean(passed))"),
    Mutation("efficiency: error of the unclipped efficiency", METRICS, "clipped = min(max(eff, 0.0), 1.0)", "clipped = eff"),
    Mutation("efficiency: variance without (1 - eff)", METRICS, "math.sqrt(clipped * (1 - clipped) / n_eff)",
             "math.sqrt(clipped / n_eff)"),
    # the choice of the working-point cut
    Mutation("working point: search from the right", METRICS, "np.searchsorted(cumulative, signal_efficiency))",
             'np.searchsorted(cumulative, signal_efficiency, side="right"))'),
    Mutation("working point: one event looser", METRICS, WP_INDEX, "index = min(index + 1, s.size - 1)"),
    Mutation("working point: one event tighter", METRICS, WP_INDEX, "index = max(min(index, s.size - 1) - 1, 0)"),
    Mutation("working point: index not clamped to the last event", METRICS, WP_INDEX, "index = min(index, s.size)"),
    Mutation("working point: ascending order", METRICS, 'order = np.argsort(-s, kind="mergesort")',
             'order = np.argsort(s, kind="mergesort")'),
    Mutation("working point: unweighted fraction", METRICS, WP_CUMULATIVE, "cumulative = np.arange(1, s.size + 1) / s.size"),
    Mutation("working point: absolute weights", METRICS, WP_CUMULATIVE,
             "cumulative = np.cumsum(np.abs(w[order])) / np.abs(w).sum()"),
    Mutation("working point: all events, not signal", METRICS, "signal = np.asarray(label).astype(bool)",
             "signal = np.ones(len(label), dtype=bool)"),
    Mutation("working point: zero signal weight accepted", METRICS, "if s.size == 0 or not w.sum() > 0:",
             "if s.size == 0 or not w.sum() >= 0:"),
    # the closure and the other keys of evaluate
    Mutation("closure: signed deviations summed", EVALUATION, CLOSURE,
             'abs(2 - result[f"sf_signal{suffix}"] - result[f"sf_background{suffix}"])'),
    Mutation("closure: deviations subtracted", EVALUATION, CLOSURE,
             'abs(1 - result[f"sf_signal{suffix}"]) - abs(1 - result[f"sf_background{suffix}"])'),
    Mutation("closure_80: the 50 % background sf", EVALUATION, CLOSURE,
             'abs(1 - result[f"sf_signal{suffix}"]) + abs(1 - result["sf_background"])'),
    Mutation("evaluate: working points swapped", EVALUATION, 'for efficiency, suffix in ((0.5, ""), (0.8, "_80")):',
             'for efficiency, suffix in ((0.8, ""), (0.5, "_80")):'),
    Mutation("evaluate: sf classes swapped", EVALUATION, SF_LOOP,
             'for cls, name in ((0, "signal"), (1, "background")):\n                sf, err'),
    Mutation("evaluate: rejection_at_30 at 50 %", EVALUATION, "metrics.rejection_at(sim_score, sim.label, sim.weight, 0.3)",
             "metrics.rejection_at(sim_score, sim.label, sim.weight, 0.5)"),
    Mutation("evaluate: ks_control unweighted", EVALUATION, "sim.weight[sim.control], dat.weight[dat.control]", "None, None"),
    Mutation("evaluate: auc_target_err from auc_source", EVALUATION, 'metrics.roc_auc_error(result["auc_target"], dat.label',
             'metrics.roc_auc_error(result["auc_source"], dat.label'),
    Mutation("evaluate: EM without the data weights", EVALUATION, "estimate_prior(data_score, dat.weight, sim_prior)",
             "estimate_prior(data_score, None, sim_prior)"),
    Mutation("evaluate: simulation reweighted with the priors swapped", EVALUATION,
             "reweight_to_prior(sim.weight, sim.label == 1, sim_prior, data_prior)",
             "reweight_to_prior(sim.weight, sim.label == 1, data_prior, sim_prior)"),
    # the per-class reweighting to a signal fraction
    Mutation("signal fraction: by counts", PRIORS, "return float(weight[label == 1].sum() / weight.sum())",
             "return float(np.mean(label == 1))"),
    Mutation("prior factors: classes swapped", PRIORS,
             "return target_prior / max(train_prior, 1e-6), (1 - target_prior) / max(1 - train_prior, 1e-6)",
             "return (1 - target_prior) / max(1 - train_prior, 1e-6), target_prior / max(train_prior, 1e-6)"),
    Mutation("prior factors: priors swapped", PRIORS,
             "return target_prior / max(train_prior, 1e-6), (1 - target_prior) / max(1 - train_prior, 1e-6)",
             "return train_prior / max(target_prior, 1e-6), (1 - train_prior) / max(1 - target_prior, 1e-6)"),
    Mutation("reweight: numpy factors swapped", PRIORS, "return weight * np.where(is_signal, signal, background)",
             "return weight * np.where(is_signal, background, signal)"),
    # the EM prior estimate with event weights
    Mutation("EM: weights dropped", PRIORS, EM_WEIGHTS, "w = torch.ones_like(p) / p.numel()"),
    Mutation("EM: weights not normalised", PRIORS, EM_WEIGHTS, "w = w.clamp(min=1e-12)"),
    Mutation("EM: unweighted M step", PRIORS, EM_STEP, "new = float(posterior.mean().clamp(*PRIOR_BOUNDS))"),
    Mutation("EM: bounds dropped", PRIORS, EM_STEP, "new = float((w * posterior).sum())"),
    Mutation("EM: priors swapped in the E step", PRIORS, "posterior = rescale_to_prior(p, train_prior, prior)",
             "posterior = rescale_to_prior(p, prior, train_prior)"),
    Mutation("EM: 20 steps at most", PRIORS, "steps: int = 100", "steps: int = 20"),
    Mutation("EM: stops at a step of 1e-4", PRIORS, "if abs(new - prior) < 1e-7:", "if abs(new - prior) < 1e-4:"),
    Mutation("rescale: ratio of prior odds inverted", PRIORS,
             "ratio = (target_prior / max(1 - target_prior, 1e-6)) / (train_prior / max(1 - train_prior, 1e-6))",
             "ratio = (train_prior / max(1 - train_prior, 1e-6)) / (target_prior / max(1 - target_prior, 1e-6))"),
    Mutation("rescale: odds not capped", PRIORS, "odds = probability / (1 - probability).clamp(min=1e-6)",
             "odds = probability / (1 - probability)"),
    # the AUC and its error
    Mutation("auc error: class counts swapped", METRICS, AUC_VARIANCE,
             "(n_b - 1) * (q1 - auc * auc) + (n_s - 1) * (q2 - auc * auc)"),
    Mutation("auc error: plain counts", METRICS, "n_s, n_b = _effective_count(w[label == 1]), _effective_count(w[label == 0])",
             "n_s, n_b = float(np.sum(label == 1)), float(np.sum(label == 0))"),
    Mutation("auc error: Q2 without its square", METRICS, "2 * auc * auc / (1 + auc)", "2 * auc / (1 + auc)"),
    Mutation("auc error: Q1 as 1/(2 - A)", METRICS, "q1, q2 = auc / (2 - auc)", "q1, q2 = 1 / (2 - auc)"),
    Mutation("auc error: divided by n_s + n_b", METRICS, "/ (n_s * n_b)", "/ (n_s + n_b)"),
    Mutation("auc error: needs more than one event per class", METRICS, "n_s >= 1 and n_b >= 1", "n_s > 1 and n_b > 1"),
    Mutation("effective count: total not squared", METRICS, "return total * total / squares", "return total / squares"),
    Mutation("auc: rectangles for trapezoids", METRICS, "return float(np.trapezoid(eff_s, eff_b))",
             "return float(np.sum(np.diff(eff_b) * eff_s[1:]))"),
    Mutation("auc: axes swapped", METRICS, "return float(np.trapezoid(eff_s, eff_b))", "return float(np.trapezoid(eff_b, eff_s))"),
    Mutation("roc: ties not grouped", METRICS,
             "last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1] if s.size else np.array([], dtype=int)",
             "last = np.arange(s.size)"),
    Mutation("roc: background unweighted", METRICS, "background = np.cumsum(np.where(y, 0.0, w))",
             "background = np.cumsum(np.where(y, 0.0, 1.0))"),
    # rejection, KS and CvM
    Mutation("rejection: taken at 30 % by default", METRICS, "signal_efficiency: float = 0.5", "signal_efficiency: float = 0.3"),
    Mutation("roc: a class of zero total weight accepted", METRICS, "if total_s > 0 else", "if total_s >= 0 else"),
    Mutation("rejection: no running maximum of the signal efficiency", METRICS, "eff_s = np.maximum.accumulate(eff_s)",
             "eff_s = eff_s"),
    Mutation("KS: grid of the first sample only", METRICS, "grid = np.union1d(a, b)", "grid = np.unique(a)"),
    Mutation("KS: CDF unweighted", METRICS, "cumulative = np.cumsum(w)\n", "cumulative = np.cumsum(np.ones_like(w))\n"),
    Mutation("KS: CDF one step late", METRICS, "cumulative[np.maximum(position - 1, 0)]",
             "cumulative[np.minimum(position, cumulative.size - 1)]"),
    Mutation("KS: a sample of zero total weight accepted", METRICS, "if not total > 0:\n        return np.full(",
             "if not total >= 0:\n        return np.full("),
    Mutation("CvM: two events per bin refused", METRICS, "if score.size < bins * 2:", "if score.size <= bins * 2:"),
    Mutation("CvM: observer at an edge in the lower bin", METRICS, 'np.searchsorted(edges, observer, side="right") - 1',
             'np.searchsorted(edges, observer, side="left") - 1'),
    Mutation("CvM: bin average unweighted", METRICS, "float(np.average((local_cdf - global_cdf) ** 2, weights=np.abs(wb)))",
             "float(np.mean((local_cdf - global_cdf) ** 2))"),
    Mutation("CvM: bin fractions by counts", METRICS, "result += float(wb.sum() / total)",
             "result += float(mask.sum() / score.size)"),
)


def failed_tests(report: Path) -> list[str]:
    """``file::test`` of every test that failed or errored in a JUnit XML report."""
    failed = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}")
    return failed


def run_tests(copy: Path) -> tuple[int, list[str], float]:
    """(passed, failed, seconds) of the fast metric tests run on the copy's ``src/``."""
    environment = dict(os.environ, PYTHONPATH=str(copy / "src"), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    report = copy / "report.xml"
    # every run starts without the examples an earlier mutation made hypothesis store
    shutil.rmtree(copy / ".hypothesis", ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", "-k", DESELECT, *TESTS],
        cwd=copy, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
    )
    seconds = time.perf_counter() - start
    cases = list(ElementTree.parse(report).getroot().iter("testcase"))
    failed = failed_tests(report)
    skipped = sum(case.find("skipped") is not None for case in cases)
    return len(cases) - len(failed) - skipped, failed, seconds


def prepared_copy() -> Path:
    """A temporary copy of src/, tests/ and pyproject.toml whose sqnn is the one the tests import."""
    copy = Path(tempfile.mkdtemp(prefix="sqnn-mutation-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", copy / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", copy / "tests", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", copy / "pyproject.toml")
    environment = dict(os.environ, PYTHONPATH=str(copy / "src"))
    imported = subprocess.run(
        [sys.executable, "-c", "import sqnn; print(sqnn.__file__)"], cwd=copy, env=environment,
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    if not Path(imported).is_relative_to(copy / "src"):
        raise SystemExit(f"the tests would import sqnn from {imported}, not from the mutated copy")
    return copy


def check(mutations: tuple[Mutation, ...]) -> dict[str, Any]:
    copy = prepared_copy()
    try:
        passed, failed, seconds = run_tests(copy)
        if failed:
            raise SystemExit(f"the unmutated code fails {failed}")
        results = []
        for mutation in mutations:
            path = copy / "src" / "sqnn" / mutation.file
            pristine = path.read_text()
            if pristine.count(mutation.original) != 1:
                raise SystemExit(f"{mutation.name}: the original snippet occurs {pristine.count(mutation.original)} times in {mutation.file}")
            path.write_text(pristine.replace(mutation.original, mutation.mutated))
            try:
                py_compile.compile(str(path), cfile=str(copy / "compiled.pyc"), doraise=True)
                _, caught_by, mutation_seconds = run_tests(copy)
            finally:
                path.write_text(pristine)
            results.append({
                "name": mutation.name, "file": f"src/sqnn/{mutation.file}", "original": mutation.original,
                "mutated": mutation.mutated, "caught": bool(caught_by), "caught_by": caught_by,
                "seconds": round(mutation_seconds, 1),
            })
            print(f"{'caught  ' if caught_by else 'SURVIVED'} {mutation.name}: {len(caught_by)} tests fail", flush=True)
    finally:
        shutil.rmtree(copy)
    return {
        "tests": list(TESTS),
        "deselected": DESELECT,
        "unmutated": {"passed": passed, "seconds": round(seconds, 1)},
        "mutations": results,
        "caught": sum(r["caught"] for r in results),
        "survived": [r["name"] for r in results if not r["caught"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mutation_check.json")
    parser.add_argument("--only", nargs="*", help="names of the mutations to apply (default: all)")
    args = parser.parse_args()
    mutations = tuple(m for m in MUTATIONS if not args.only or m.name in args.only)
    result = check(mutations)
    sys.path.insert(0, str(ROOT / "src"))
    from sqnn.files import write_json

    write_json(args.out, result)
    print(f"{result['caught']} of {len(mutations)} mutations caught; written to {args.out}")
    if result["survived"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

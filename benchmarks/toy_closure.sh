#!/usr/bin/env bash
# The README's toy example for every method it names, one seed: closure of source-only, the
# default SQNN, the reweight baseline (control region, all events) and SQNN on reweighted simulation.
#   bash benchmarks/toy_closure.sh [OUT]     (default benchmarks/results/toy_closure)
# Writes OUT/<method>.json (sqnn evaluate's metrics) and OUT/summary.json.
set -euo pipefail
OUT=${1:-benchmarks/results/toy_closure}
SQNN=${SQNN:-"python -m sqnn"}
export OMP_NUM_THREADS=1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
$SQNN generate toy --domain sim  --n 20000 --seed 1 --out "$WORK/sim.parquet"
$SQNN generate toy --domain data --n 20000 --seed 2 --out "$WORK/data.parquet"
F=(--sim "$WORK/sim.parquet" --data "$WORK/data.parquet" --features x0,x1,x2,x3,x4,x5 --label is_signal
   --weight weight --control control --observer mass --gamma 1 --epochs 20 --seed 0 --quiet)
for name in source-only sqnn reweight sqnn-reweight-control reweight-all sqnn-reweight-all; do
  case $name in
    sqnn-reweight-control) flags=(--method sqnn --reweight control) ;;
    reweight-all) flags=(--method reweight --reweight all) ;;
    sqnn-reweight-all) flags=(--method sqnn --reweight all) ;;
    *) flags=(--method "$name") ;;
  esac
  $SQNN train "${F[@]}" "${flags[@]}" --out "$WORK/runs/$name" > /dev/null
  $SQNN evaluate "$WORK/runs/$name" --sim "$WORK/sim.parquet" --data "$WORK/data.parquet" --data-label is_signal \
      --out "$OUT/$name.json" > /dev/null
done
python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
keys = ("auc_target", "closure", "closure_80", "sf_signal", "sf_background", "sf_signal_80", "sf_background_80",
        "ks_control", "data_signal_fraction")
summary = {p.stem: {k: json.loads(p.read_text()).get(k) for k in keys} for p in sorted(out.glob("*.json")) if p.stem != "summary"}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
for name, m in summary.items():
    print(f"{name:24s} " + " ".join(f"{k} {m[k]:.3f}" for k in keys))
PY

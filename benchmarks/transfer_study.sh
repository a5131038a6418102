#!/usr/bin/env bash
# The transfer-learning studies of the README ("Transfer learning across channels"), end to end:
#
#   1. event samples of six channels with pileup (mu = 30, charged-hadron subtraction) on the
#      shared detector, and a "data" sample of the tth channel (A14 tune, shifted detector, mu = 40);
#   2. the data-efficiency study: a set model pretrained on three channels at once, fine-tuned on
#      two others with N = 100 ... 30 000 events, against training from scratch and an MLP;
#   3. the simulation -> data study of set models: source-only, SQNN and DANN, closure and AUC;
#   4. the report section (HTML + Markdown) of both.
#
# Every step skips what already exists (a finished file, a run already in a study's JSON), so the
# same command resumes after an interruption. Runs one process at a time, one thread, niced.
#
#   benchmarks/transfer_study.sh                     # events under $EVENTS, results in benchmarks/results
#   EVENTS=/scratch/events SEEDS=0,1,2 benchmarks/transfer_study.sh
#   benchmarks/transfer_study.sh events              # only the event samples
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
EVENTS="${EVENTS:-/tmp/sqnn-transfer-events}"
RESULTS="${RESULTS:-benchmarks/results}"
SEEDS="${SEEDS:-0,1,2,3,4}"
PYTHON="${PYTHON:-$here/.venv/bin/python}"
export OMP_NUM_THREADS=1 PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}"
run() { nice -n 10 "$PYTHON" "$@"; }
mkdir -p "$EVENTS" "$RESULTS"
# CPU seconds of every step, appended: what the studies cost on this machine
timed() { /usr/bin/time -a -o "$RESULTS/transfer_study_cpu.txt" -f "$1: %U user + %S system CPU-s, %e s wall" "${@:2}"; }

# name channel domain events seed pileup-mu
SAMPLES=(
  "zprime_sim     zprime    sim  24000 11 30"
  "wprime_sim     wprime    sim  24000 12 30"
  "ttphi_sim      ttphi     sim  24000 13 30"
  "tth_sim        tth       sim  43000 14 30"
  "zprime500_sim  zprime500 sim  43000 15 30"
  "tth_data       tth       data 20000 16 40"
)
for line in "${SAMPLES[@]}"; do
  read -r name channel domain n seed mu <<<"$line"
  if [[ ! -f "$EVENTS/$name.parquet" ]]; then
    echo "generating $name ($n events)"
    timed "generate $name" nice -n 10 "$PYTHON" -m sqnn generate events --channel "$channel" --domain "$domain" \
      --n "$n" --seed "$seed" --pileup-mu "$mu" --quiet --out "$EVENTS/$name.parquet"
  fi
done
[[ "${1:-}" == events ]] && exit 0  # only the samples

# pretrained on three channels at once; fine-tuned on tth (H -> bb) and a 500 GeV Z' (close to tt)
timed "transfer study" nice -n 10 "$PYTHON" benchmarks/transfer_study.py \
  --pretrain zprime="$EVENTS/zprime_sim.parquet" --pretrain wprime="$EVENTS/wprime_sim.parquet" \
  --pretrain ttphi="$EVENTS/ttphi_sim.parquet" \
  --channel tth="$EVENTS/tth_sim.parquet" --channel zprime500="$EVENTS/zprime500_sim.parquet" \
  --sizes 100,300,1000,3000,10000,30000 --seeds "$SEEDS" \
  --ablation frozen@signal,finetune-slow@signal,frozen@zprime,finetune-slow@zprime,frozen@ttphi,finetune-slow@ttphi \
  --ablation-sizes 100,1000,10000 --cache "$EVENTS/pretrained" \
  --out "$RESULTS/transfer_study.json" --plot "$RESULTS/transfer_study.png"

timed "set closure study" nice -n 10 "$PYTHON" benchmarks/set_closure_study.py \
  --sim "$EVENTS/tth_sim.parquet" --data "$EVENTS/tth_data.parquet" --seeds "$SEEDS" \
  --runs "$EVENTS/set_closure_runs" --out "$RESULTS/set_closure_study.json"

run -m sqnn.report.transfer --study "$RESULTS/transfer_study.json" --closure "$RESULTS/set_closure_study.json" \
  --out "$RESULTS/transfer_study.html" --markdown "$RESULTS/transfer_study.md"

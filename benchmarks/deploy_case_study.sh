#!/usr/bin/env bash
# Train the deployable W-jet model, prove firmware/engine parity on 5000 events, and bench it.
# Usage: bash benchmarks/deploy_case_study.sh OUTDIR
set -euo pipefail
out=${1:-/tmp/deploy-case-study}
data=src/sqnn/datasets
export OMP_NUM_THREADS=1
sqnn train --sim $data/wjets_sim.parquet --data $data/wjets_data.parquet --config examples/wjets_deploy.yaml --quiet --out "$out/run"
sqnn export "$out/run" --format hls4ml --out "$out/hls4ml" --check 5000 --events $data/wjets_data.parquet
sqnn export "$out/run" --format hls4ml --out "$out/hls4ml-lfsr" --check 5000 --events $data/wjets_data.parquet --inference stochastic --samples 1
sqnn export "$out/run" --format packed --out "$out/packed" --check 20000 --events $data/wjets_data.parquet
sqnn export "$out/run" --format onnx --out "$out/onnx" --check 20000 --events $data/wjets_data.parquet
sqnn bench "$out/run" --batch 1,256,65536 --threads 1 --out "$out/bench.json"

#!/usr/bin/env bash
# Every benchmark of the segmentation-loss drivers (issue 7), JSON lines collected in
# benchmarks/out/losses/results.jsonl (about 70 minutes on 2 shared cores).  Results: README.md here.
#   BIN=bin bash benchmarks/losses/run.sh            (ONLY=seglossbias|repri|adapt|mixed for one)
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p benchmarks/out/losses
for b in seglossbias repri adapt mixed; do
  [ -n "${ONLY:-}" ] && [ "$ONLY" != "$b" ] && continue
  bash "benchmarks/losses/$b.sh" | tee -a benchmarks/out/losses/results.jsonl
done

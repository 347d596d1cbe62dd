#!/usr/bin/env bash
# scripts/test.sh — the README's test command: set up (packages, assets, build), then run every
# test: cpu, mpi (mpirun on this machine), slurm (a real Slurm on localhost), and gpu (skips cleanly
# without a device). Usage: bash scripts/test.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
# The Slurm test runs a real slurmctld/slurmd; install them here, not from inside a test.
FERRY_EXTRA_PACKAGES="slurm-wlm munge" bash scripts/setup.sh build
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
# Then the fuzz targets (tests/fuzz, their own ASan build in build-fuzz/): every committed regression
# input and seed replayed, each reader fuzzed for FERRY_FUZZ_SECONDS (30), two at a time, from a fixed
# seed (FERRY_FUZZ_SEED, 1) so a red run reproduces; long random-seed runs are fuzz.sh's own. The whole
# suite only (no ctest arguments); FERRY_FUZZ=0 skips it.
if (($# == 0)) && [[ ${FERRY_FUZZ:-1} != 0 ]]; then
  FERRY_FUZZ_SEED=${FERRY_FUZZ_SEED:-1} bash scripts/fuzz.sh "${FERRY_FUZZ_SECONDS:-30}"
fi

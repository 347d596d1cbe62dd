#!/usr/bin/env bash
# scripts/mpirun/multinode.sh — multi-node pretraining with OpenMPI's mpirun: one rank per GPU.
#
#   scripts/mpirun/multinode.sh --hostfile hosts --ranks-per-node 8 --tp 8 --pp 2 [--zero1] \
#       -- --config configs/gpt2-1558m.toml --max-steps 5000 --out runs/gpt2-xl
#
# hosts lists one node per line ("node01 slots=8"; "#" starts a comment). World = nodes ×
# ranks-per-node; the layout is tp × dp × pp with TP innermost, so with tp ≤ ranks-per-node each
# TP group sits inside one node; dp = world / (tp · pp). Everything after "--" goes to
# `ferry pretrain`. Each rank picks GPU = local rank (mod GPUs per node).
#
# Options:
#   --hostfile FILE        nodes, one per line                                   (required)
#   --ranks-per-node N     = GPUs per node                                       [8]
#   --tp N, --pp N         tensor / pipeline degrees                             [1, 1]
#   --zero1                shard the optimizer state over DP (ZeRO-1)
#   --ifname IF            network interface for MPI's and NCCL's sockets (sets NCCL_SOCKET_IFNAME)
#   --ib-hca LIST          InfiniBand adapters for NCCL, e.g. mlx5_0,mlx5_1 (sets NCCL_IB_HCA)
#   --dry-run              print the mpirun command instead of running it
# Environment: FERRY_BIN (the ferry binary; default ferry on PATH, else ./build/ferry), NCCL_DEBUG
# [WARN], any NCCL_* already set (all are forwarded to every rank), FERRY_RUN (replaces the whole
# per-rank command; tests run a small probe with it).
set -euo pipefail

hostfile= ranks_per_node=8 tp=1 pp=1 zero1=0 ifname= ib_hca= dry_run=0
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while (($#)); do
  case "$1" in
    --hostfile) hostfile=$2; shift 2 ;;
    --ranks-per-node) ranks_per_node=$2; shift 2 ;;
    --tp) tp=$2; shift 2 ;;
    --pp) pp=$2; shift 2 ;;
    --zero1) zero1=1; shift ;;
    --ifname) ifname=$2; shift 2 ;;
    --ib-hca) ib_hca=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage 0 ;;
    --) shift; break ;;
    *) echo "multinode.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$hostfile" && -r "$hostfile" ]] || { echo "multinode.sh: --hostfile FILE is required and must be readable" >&2; exit 2; }
for v in ranks_per_node tp pp; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "multinode.sh: --${v//_/-} must be a positive integer, got '${!v}'" >&2; exit 2; }
done

nodes=$(grep -cvE '^[[:space:]]*(#|$)' "$hostfile" || true)
(( nodes > 0 )) || { echo "multinode.sh: $hostfile lists no nodes" >&2; exit 2; }
world=$((nodes * ranks_per_node))
if (( world % (tp * pp) != 0 )); then
  echo "multinode.sh: $nodes nodes × $ranks_per_node ranks = $world is not a multiple of tp·pp = $((tp * pp))" >&2
  exit 2
fi

if [[ -n "${FERRY_RUN:-}" ]]; then
  read -r -a run <<<"$FERRY_RUN"
else
  bin=${FERRY_BIN:-$(command -v ferry || echo ./build/ferry)}
  run=("$bin" pretrain --tp "$tp" --pp "$pp")
  ((zero1)) && run+=(--zero1)
  run+=("$@")
fi

export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
[[ -n "$ifname" ]] && export NCCL_SOCKET_IFNAME=$ifname
[[ -n "$ib_hca" ]] && export NCCL_IB_HCA=$ib_hca
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

mpirun_args=(--hostfile "$hostfile" -np "$world" --map-by "ppr:${ranks_per_node}:node" --bind-to none)
# Every NCCL_* variable set here reaches every rank, plus what the ranks need to find ferry.
for name in $(compgen -e | grep -E '^NCCL_' || true); do mpirun_args+=(-x "$name"); done
mpirun_args+=(-x OMP_NUM_THREADS -x PATH)
[[ -n "${LD_LIBRARY_PATH:-}" ]] && mpirun_args+=(-x LD_LIBRARY_PATH)
# MPI's own traffic (the NCCL bootstrap) on the same interface as NCCL's sockets.
[[ -n "$ifname" ]] && mpirun_args+=(--mca btl_tcp_if_include "$ifname" --mca oob_tcp_if_include "$ifname")
[[ $(id -u) == 0 ]] && mpirun_args+=(--allow-run-as-root)
# Tests on a small machine run more ranks than cores.
[[ "${FERRY_OVERSUBSCRIBE:-0}" == 1 ]] && mpirun_args+=(--oversubscribe)

echo "multinode.sh: $nodes node(s) × $ranks_per_node = $world ranks, layout tp$tp × dp$((world / (tp * pp))) × pp$pp" >&2
if ((dry_run)); then
  printf '%q ' mpirun "${mpirun_args[@]}" "${run[@]}"
  echo
  exit 0
fi
exec mpirun "${mpirun_args[@]}" "${run[@]}"

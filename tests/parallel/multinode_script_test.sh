#!/usr/bin/env bash
# tests/parallel/multinode_script_test.sh — scripts/mpirun/multinode.sh maps its flags to the
# right mpirun and `ferry pretrain` command, refuses layouts that do not fit, and really launches
# (4 ranks of ferry_mpi_probe on a localhost hostfile).
#   bash tests/parallel/multinode_script_test.sh REPO PATH/TO/ferry_mpi_probe
set -euo pipefail
REPO=$1
PROBE=$2
SCRIPT=$REPO/scripts/mpirun/multinode.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "multinode_script_test: FAIL: $*" >&2; exit 1; }

printf '# two nodes\nnode01 slots=4\n\nnode02 slots=4\n' >"$tmp/two-nodes"
cmd=$(FERRY_BIN=/opt/ferry "$SCRIPT" --hostfile "$tmp/two-nodes" --ranks-per-node 4 --tp 2 --pp 2 --zero1 \
      --ifname eth0 --ib-hca mlx5_0 --dry-run -- --config configs/tiny.toml 2>"$tmp/err")
grep -q "2 node(s) × 4 = 8 ranks, layout tp2 × dp2 × pp2" "$tmp/err" || fail "layout line: $(cat "$tmp/err")"
for want in "-np 8 " "--map-by ppr:4:node" "-x NCCL_SOCKET_IFNAME" "-x NCCL_IB_HCA" "-x NCCL_DEBUG" \
            "--mca btl_tcp_if_include eth0" "/opt/ferry pretrain --tp 2 --pp 2 --zero1 --config configs/tiny.toml"; do
  [[ "$cmd" == *"$want"* ]] || fail "dry run lacks '$want': $cmd"
done

set +e
"$SCRIPT" --hostfile "$tmp/two-nodes" --ranks-per-node 3 --tp 4 --dry-run >/dev/null 2>"$tmp/err"
rc=$?
set -e
[[ $rc == 2 ]] && grep -q "6 is not a multiple of tp·pp = 4" "$tmp/err" || fail "bad layout: rc=$rc $(cat "$tmp/err")"

echo "localhost slots=4" >"$tmp/localhost"
out=$(FERRY_OVERSUBSCRIBE=1 FERRY_RUN="$PROBE ping 3" timeout 60 "$SCRIPT" --hostfile "$tmp/localhost" --ranks-per-node 4 2>&1) ||
  fail "launch failed: $out"
for rank in 0 1 2 3; do
  grep -q "ferry-ping: step 2 rank $rank sum 30" <<<"$out" || fail "rank $rank did not finish step 2 with sum 30: $out"
done
echo "multinode_script_test: PASS"

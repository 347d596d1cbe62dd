#!/usr/bin/env bash
# tests/slurm/run_slurm_test.sh — a real Slurm on localhost runs the repository's batch script
# (scripts/slurm/pretrain.sbatch) as a 2-task CPU job of `ferry pretrain` (a tiny GPT, data
# parallel over the two ranks), and the job's output must show the two ranks training in step:
# for every step both ranks print the same loss and the same hash of their parameters
# (FERRY_RANK_LOG=1 makes each rank print "ferry-rank: step S rank R … loss L params H").
# Registered in ctest with label `slurm` (tests/mpi.cmake); run alone with `ctest -L slurm`.
#
#   bash tests/slurm/run_slurm_test.sh PATH/TO/ferry
#
# Installs slurm-wlm and munge when missing (needs root; exits 77 = skipped otherwise). Everything
# else lives in a scratch folder: its own munge key and socket, its own slurm.conf, spool, state,
# logs and ports, so nothing on the machine is touched and an installed Slurm is not disturbed.
# Always cleans up: scontrol shutdown, kill the munged it started, remove the scratch folder.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FERRY=${1:+$(realpath "$1")}
TASKS=2
STEPS=${FERRY_SLURM_TEST_STEPS:-5}

# What each rank runs: the batch script builds the `ferry pretrain` command from FERRY_BIN,
# FERRY_CONFIG and FERRY_ARGS, as a user's job would (relative paths are inside the job's scratch
# folder); FERRY_SLURM_TEST_RUN replaces the whole command. STEP_LINE captures (step) (rank)
# (the value that must agree between ranks).
export FERRY_BIN=$FERRY FERRY_CONFIG=$REPO/configs/tiny.toml
export FERRY_ARGS="--max-steps $STEPS --batch-size 4 --seq-len 32 --eval-every 0 --out run"
RUN=${FERRY_SLURM_TEST_RUN:-}
STEP_LINE=${FERRY_SLURM_TEST_STEP_LINE:-'^ferry-rank: step ([0-9]+) rank ([0-9]+) tp [0-9]+ dp [0-9]+ pp [0-9]+ (loss .+)$'}
TIMEOUT_S=${FERRY_SLURM_TEST_TIMEOUT:-60}
export FERRY_RANK_LOG=1  # (not OMP_NUM_THREADS: `nproc` below would believe it; the batch script sets it)

say() { echo "slurm-test: $*"; }
fail() { echo "slurm-test: FAIL: $*" >&2; exit 1; }

if [[ -z "${FERRY_SLURM_TEST_RUN:-}" && ! -x "$FERRY" ]]; then
  fail "usage: $0 PATH/TO/ferry (or set FERRY_SLURM_TEST_RUN)"
fi

# ---- install -------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null ||
   ! [[ -x /usr/sbin/munged ]]; then
  if [[ $(id -u) != 0 ]]; then
    say "slurm-wlm/munge are not installed and this is not root: skipped"
    exit 77
  fi
  say "installing slurm-wlm munge"
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 slurm-wlm munge >/dev/null; }
  apt_install || { apt-get update -qq -o DPkg::Lock::Timeout=300 && apt_install; }
fi
if [[ $(id -u) != 0 ]]; then
  say "the daemons run as root here (SlurmUser=root): skipped"
  exit 77
fi

# ---- scratch and cleanup ---------------------------------------------------------------------
SCRATCH=$(mktemp -d /tmp/ferry-slurm.XXXXXX)
chmod 755 "$SCRATCH"
export SLURM_CONF=$SCRATCH/slurm.conf
MUNGE_DIR=$SCRATCH/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
JOB_ID=

pid_of() { [[ -s "$1" ]] && cat "$1" || true; }
stop_pid() {  # pid: TERM, wait up to 5 s, then KILL
  local pid=$1
  [[ -n "$pid" ]] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  set +e
  [[ -n "$JOB_ID" ]] && scancel "$JOB_ID" 2>/dev/null
  if [[ -s "$SCRATCH/slurmctld.pid" ]]; then timeout 10 scontrol shutdown >/dev/null 2>&1; fi
  stop_pid "$(pid_of "$SCRATCH/slurmd.pid")"
  stop_pid "$(pid_of "$SCRATCH/slurmctld.pid")"
  stop_pid "$(pid_of "$MUNGE_DIR/munged.pid")"
  if (( rc != 0 )); then
    for log in "$SCRATCH"/slurmctld.log "$SCRATCH"/slurmd.log "$MUNGE_DIR"/munged.log; do
      [[ -s "$log" ]] && { echo "---- $(basename "$log") (last lines)"; tail -n 15 "$log"; }
    done
  fi
  rm -rf "$SCRATCH"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- munge: a private key and socket ---------------------------------------------------------
install -d -m 755 -o munge -g munge "$MUNGE_DIR"  # munged wants its socket folder searchable by all
/usr/sbin/mungekey --create --keyfile="$MUNGE_DIR/munge.key" >/dev/null 2>&1 ||
  dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
chown munge:munge "$MUNGE_DIR/munge.key"
chmod 400 "$MUNGE_DIR/munge.key"
# munged refuses to run as root (insecure log file): run it as the munge user.
runuser -u munge -- /usr/sbin/munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" \
  --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed"

# ---- slurm.conf (TOOLCHAIN.md, "A real Slurm cluster on localhost") --------------------------
# Ports away from the defaults (6817/6818) so that an installed Slurm is not disturbed.
PORT_BASE=${FERRY_SLURM_TEST_PORT:-$((17000 + RANDOM % 2000))}
cat >"$SLURM_CONF" <<CONF
ClusterName=ferrytest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$PORT_BASE
SlurmdPort=$((PORT_BASE + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
MailProg=/bin/true
ReturnToService=2
StateSaveLocation=$SCRATCH/state
SlurmdSpoolDir=$SCRATCH/spool
SlurmctldPidFile=$SCRATCH/slurmctld.pid
SlurmdPidFile=$SCRATCH/slurmd.pid
SlurmctldLogFile=$SCRATCH/slurmctld.log
SlurmdLogFile=$SCRATCH/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
mkdir -p "$SCRATCH/state" "$SCRATCH/spool"

slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost

# ---- wait for the node, submit, poll ---------------------------------------------------------
deadline=$((SECONDS + TIMEOUT_S))
until sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; do
  (( SECONDS < deadline )) || fail "the node did not come up: $(sinfo -h -N -o '%T %E' 2>&1)"
  sleep 0.5
done
say "slurm is up ($(sinfo -h -N -o '%N %T %c CPUs'))"

# The sbatch options below override the script's #SBATCH lines: one node, no GPUs, 2 tasks.
JOB_ID=$(FERRY_RUN="$RUN" sbatch --parsable --nodes=1 --ntasks-per-node="$TASKS" --cpus-per-task=1 --overcommit \
         --gpus-per-node=0 --time=5 --chdir="$SCRATCH" --output="$SCRATCH/job-%j.out" --error="$SCRATCH/job-%j.out" \
         --export=ALL "$REPO/scripts/slurm/pretrain.sbatch")
say "submitted job $JOB_ID: ${RUN:-$FERRY_BIN pretrain --config $FERRY_CONFIG $FERRY_ARGS}"

state=
while :; do
  state=$(scontrol show job -o "$JOB_ID" 2>/dev/null | grep -oE 'JobState=[A-Z_]+' | cut -d= -f2 || true)
  case "$state" in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | PREEMPTED | BOOT_FAIL | DEADLINE) break ;;
  esac
  (( SECONDS < deadline )) || fail "job $JOB_ID still $state after ${TIMEOUT_S} s"
  sleep 0.5
done
OUT="$SCRATCH/job-$JOB_ID.out"
job_line=$(scontrol show job -o "$JOB_ID")
FINISHED_ID=$JOB_ID
JOB_ID=  # finished: nothing to cancel
echo "---- job output"
cat "$OUT" 2>/dev/null || true
echo "----"
[[ "$state" == COMPLETED ]] || fail "job ended $state ($(grep -oE 'ExitCode=[0-9:]+' <<<"$job_line"))"

# ---- the ranks ran in step -------------------------------------------------------------------
declare -A value_of   # "step rank" → value
while IFS= read -r line; do
  if [[ "$line" =~ $STEP_LINE ]]; then
    value_of["${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"]=${BASH_REMATCH[3]}
  fi
done <"$OUT"
for ((step = 1; step <= STEPS; step++)); do
  first=${value_of["$step 0"]:-}
  [[ -n "$first" ]] || fail "rank 0 printed no line for step $step"
  for ((rank = 1; rank < TASKS; rank++)); do
    v=${value_of["$step $rank"]:-}
    [[ -n "$v" ]] || fail "rank $rank printed no line for step $step"
    [[ "$v" == "$first" ]] || fail "step $step: rank 0 has '$first' but rank $rank has '$v': the ranks are not in step"
  done
done
if [[ -z "${FERRY_SLURM_TEST_RUN:-}" ]]; then
  # One job of two data-parallel ranks, not two separate worlds of one (srun without PMIx).
  for ((rank = 0; rank < TASKS; rank++)); do
    grep -q "^ferry-rank: step 1 rank $rank tp 0 dp $rank pp 0 " "$OUT" || fail "rank $rank is not DP rank $rank of one job"
  done
  grep -q "^ferry: done: $STEPS steps" "$OUT" || fail "ferry pretrain did not finish its $STEPS steps"
fi
say "PASS: $TASKS ranks ran $STEPS steps in step under sbatch/srun (job $FINISHED_ID; $SECONDS s in all)"

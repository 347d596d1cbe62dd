#!/usr/bin/env bash
# benchmarks/gpu_transfer.sh — issue 6 [finetune] on a GPU machine, in one run of at most 9 minutes:
# pretrain GPT-2 124M on the prepared corpus, fine-tune it on every IMDB training label, score the
# whole test split, and (time permitting) the same fine-tune from scratch; a table last and
# $OUT/transfer.json. GPU_TRANSFER_TASK=ner instead pretrains an MLM encoder on the corpus text and
# fine-tunes it (and a scratch twin) on WNUT-17 entities.
#
# Before the GPU session, on the build machine:  bash scripts/pack_gpu_data.sh   (fills gpu_pack/)
# On the GPU machine, repository root, carry ["third_party", "gpu_pack"]:
#   OUT=/some/dir bash benchmarks/gpu_transfer.sh
# The whole run stays inside GPU_TRANSFER_BUDGET_S (default 540 s), each step under its own timeout
# (benchmarks/lib_steps.sh, as gpu_check.sh). Reuses build-gpu/ when gpu_check.sh built it on the same
# warm machine; else builds only the `ferry` target for sm_90a. Checkpoints go to runs/gpu_transfer/
# (GPU_TRANSFER_RUN_DIR), not $OUT: a 124M checkpoint is 1.5 GB and $OUT travels back.
#
# Knobs (environment): GPU_TRANSFER_TASK sentiment|ner, GPU_TRANSFER_BUDGET_S, GPU_TRANSFER_PRETRAIN_S
# (seconds of pretraining steps, default 210), GPU_TRANSFER_PRETRAIN_MAX_STEPS (cap, default 3000),
# GPU_TRANSFER_PRETRAIN_STEPS (a fixed step count instead),
# GPU_TRANSFER_TOK_S (skip the throughput probe, use this tokens/s), GPU_TRANSFER_FT_S (seconds of
# fine-tuning steps, default 100), GPU_TRANSFER_FT_LR (1e-4), GPU_TRANSFER_TEST_LIMIT (0: all 23,903),
# GPU_TRANSFER_SCRATCH (1: run the scratch baseline when time is left; 0: never),
# GPU_TRANSFER_MLM_S (ner: seconds of MLM steps, default 180), GPU_TRANSFER_MLM_VOCAB (ner: 0, GPT-2's
# 50,257 pieces; or a --vocab-size), GPU_TRANSFER_NER_CORPORA (wnut17[,btc]),
# GPU_TRANSFER_DRY_RUN=1 (print the ferry commands instead of running them; no GPU, no build).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
OUT=${OUT:-$ROOT/out/gpu_transfer}
BUILD=${BUILD:-$ROOT/build-gpu}
RUN=${GPU_TRANSFER_RUN_DIR:-$ROOT/runs/gpu_transfer}
BUDGET=${GPU_TRANSFER_BUDGET_S:-540}
TASK=${GPU_TRANSFER_TASK:-sentiment}
DRY=${GPU_TRANSFER_DRY_RUN:-0}
PRETRAIN_S=${GPU_TRANSFER_PRETRAIN_S:-210}
PRETRAIN_STEPS=${GPU_TRANSFER_PRETRAIN_STEPS:-}
TOK_S=${GPU_TRANSFER_TOK_S:-}
FT_S=${GPU_TRANSFER_FT_S:-100}
FT_LR=${GPU_TRANSFER_FT_LR:-1e-4}
TEST_LIMIT=${GPU_TRANSFER_TEST_LIMIT:-0}
SCRATCH=${GPU_TRANSFER_SCRATCH:-1}
MLM_S=${GPU_TRANSFER_MLM_S:-180}
MLM_VOCAB=${GPU_TRANSFER_MLM_VOCAB:-0}
PRETRAIN_MAX_STEPS=${GPU_TRANSFER_PRETRAIN_MAX_STEPS:-3000}
NER_CORPORA=${GPU_TRANSFER_NER_CORPORA:-wnut17}
JOBS=$(nproc)

die() {
  echo "gpu_transfer: error: $*" >&2
  exit 2
}
# Arguments first: a typo costs nothing here and minutes of device time there.
case $TASK in sentiment | ner) ;; *) die "GPU_TRANSFER_TASK=$TASK (sentiment or ner)" ;; esac
for v in BUDGET_S:BUDGET PRETRAIN_S:PRETRAIN_S PRETRAIN_MAX_STEPS:PRETRAIN_MAX_STEPS FT_S:FT_S \
  TEST_LIMIT:TEST_LIMIT SCRATCH:SCRATCH MLM_S:MLM_S MLM_VOCAB:MLM_VOCAB DRY_RUN:DRY; do
  name=${v#*:}
  [[ ${!name} =~ ^[0-9]+$ ]] || die "GPU_TRANSFER_${v%%:*}=${!name} is not a whole number"
done
for v in PRETRAIN_STEPS TOK_S; do
  [[ -z ${!v} || ${!v} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "GPU_TRANSFER_$v=${!v} is not a number"
done
[[ $FT_LR =~ ^[0-9.]+(e-?[0-9]+)?$ ]] || die "GPU_TRANSFER_FT_LR=$FT_LR is not a number"
for c in ${NER_CORPORA//,/ }; do [[ $c == wnut17 || $c == btc ]] || die "GPU_TRANSFER_NER_CORPORA: '$c' (wnut17, btc)"; done
compgen -G "$ROOT/gpu_pack/*.tar.gz" >/dev/null ||
  die "gpu_pack/ is missing: run 'bash scripts/pack_gpu_data.sh' on the build machine and carry gpu_pack"

export OUT
mkdir -p "$OUT"
START=$SECONDS
: > "$OUT/steps.txt"
# shellcheck source=benchmarks/lib_steps.sh
source "$ROOT/benchmarks/lib_steps.sh"
note() { echo "$*" | tee -a "$OUT/steps.txt"; }

FERRY=("$BUILD/ferry")
((DRY)) && FERRY=(echo "$BUILD/ferry")

nvidia-smi -L > "$OUT/device.txt" 2>&1 || echo "no nvidia-smi" > "$OUT/device.txt"
cat "$OUT/device.txt"

# --- data: unpack gpu_pack into the places ferry reads, and check every byte -------------------
if ((DRY)); then
  note "unpack: skipped (dry run)"
else
  # shellcheck disable=SC2016  # expanded by the inner bash
  step unpack 90 bash -c 'for f in gpu_pack/*.tar.gz; do tar -xzf "$f" || exit; done
    sha256sum --quiet -c gpu_pack/SHA256SUMS && echo "gpu_pack: $(wc -l < gpu_pack/SHA256SUMS) files unpacked and verified"' ||
    die "unpacking gpu_pack failed (see $OUT/unpack.log)"
fi
export FERRY_ASSETS=$ROOT/data/cache  # the build's default too; explicit in case build-gpu came from elsewhere
if [[ -d $ROOT/data/cache/ner/wnut17 ]]; then
  export FERRY_NER_DIR=$ROOT/data/cache/ner
elif [[ -d $ROOT/shared/data/ner/wnut17 ]]; then
  export FERRY_NER_DIR=$ROOT/shared/data/ner
fi

# --- build: only the ferry binary (gpu_check.sh builds everything into the same folder) ---------
[[ -d $ROOT/third_party/usr/include ]] || echo "note: third_party/usr/include missing; carry third_party"
if ((DRY)); then
  note "build: skipped (dry run)"
else
  if [[ ! -f $BUILD/build.ninja ]]; then
    step configure 90 cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CUDA_ARCHITECTURES=90a-real || die "configure failed (see $OUT/configure.log)"
  fi
  step build 240 cmake --build "$BUILD" -j "$JOBS" --target ferry || die "build failed (see $OUT/build.log)"
fi

rm -rf "$RUN"
mkdir -p "$RUN"

# The median tokens/s of a ferry metrics.jsonl (pretrain: per-step tokens_per_s), else empty.
median_tok_s() {
  python3 - "$1" <<'PY' 2>/dev/null
import json, statistics, sys
v = [json.loads(l).get("tokens_per_s") for l in open(sys.argv[1]) if l.strip()]
v = [x for x in v if x][3:]  # the first steps build and capture the step graph
print(int(statistics.median(v)) if v else "")
PY
}
# The last "N tok/s" a ferry finetune log printed (its pace over all steps so far), else empty.
log_tok_s() { grep -o '[0-9.]* tok/s' "$1" 2>/dev/null | tail -n 1 | cut -d' ' -f1 | cut -d. -f1; }
# keep NAME DIR: the small files of a run folder into $OUT/NAME/ (never checkpoints).
keep() {
  mkdir -p "$OUT/$1"
  for f in eval.json metrics.jsonl loss.svg; do [[ -f $2/$f ]] && cp "$2/$f" "$OUT/$1/"; done
  return 0
}
# clamp X LO HI
clamp() { local x=$1; ((x < $2)) && x=$2; ((x > $3)) && x=$3; echo "$x"; }

sentiment_mode() {
  # --- a. pretrain GPT-2 124M (configs/gpt2-124m.toml: B=16, T=1024, lr 6e-4) ------------------
  # Steps from throughput: ferry's CUDA training has no measured figure yet (RESULTS.md: pending);
  # the anchors on an H200 are torch.compile 497K tok/s and llm.c 363K tok/s (../shared/ANCHORS.md),
  # so without a probe we assume 250K tok/s: 210 s x 250K / 16,384 tokens per step = 3,200 steps.
  # A 10-step `ferry bench train` probe (~25 s) measures the real figure on this card first.
  # Capped at 3,000 steps = 49M tokens = 4 passes over the corpus's 12.3M training tokens: more
  # passes of a 124M model over so little text overfit.
  local tok_per_step=16384 steps
  if [[ -z $TOK_S && -z $PRETRAIN_STEPS ]]; then
    step probe 60 "${FERRY[@]}" bench train --device cuda --model gpt2-124m --batch 16 --seq-len 1024 \
      --steps 10 --warmup 3 --json "$OUT/probe.json"
    TOK_S=$(python3 -c 'import json,sys; r=[r for r in json.load(open(sys.argv[1]))["runs"] if r["status"]=="ok"]; print(int(r[0]["tokens_per_s"]))' \
      "$OUT/probe.json" 2>/dev/null)
    [[ -n $TOK_S ]] || { TOK_S=250000; note "probe: no figure; assuming $TOK_S tok/s"; }
  fi
  TOK_S=${TOK_S%.*}
  [[ -n $TOK_S && $TOK_S -gt 0 ]] || TOK_S=250000
  # What the pretraining may take: its own overhead (start, 12 evaluations, 4 checkpoints of 1.5 GB:
  # ~45 s) and the fine-tune after it (FT_S + ~50 s of load and scoring) come off the budget left.
  local pre_s
  pre_s=$(($(left) - 45 - FT_S - 50))
  ((pre_s > PRETRAIN_S)) && pre_s=$PRETRAIN_S
  if [[ -n $PRETRAIN_STEPS ]]; then
    steps=${PRETRAIN_STEPS%.*}
  else
    steps=$(clamp $((TOK_S * pre_s / tok_per_step)) 50 "$PRETRAIN_MAX_STEPS")
  fi
  local ckpt warm evals
  ckpt=$(clamp $((steps / 4)) 50 1000)
  warm=$(clamp $((steps / 10)) 10 700)
  evals=$(clamp $((steps / 12)) 25 250)
  note "pretrain plan: $steps steps of $tok_per_step tokens at ~${TOK_S} tok/s (~$((steps * tok_per_step / TOK_S)) s), warm-up $warm, val every $evals, checkpoint every $ckpt"
  # A copy of the config with checkpoints on (the preset writes none) and a warm-up sized to the run.
  awk -v c="$ckpt" -v w="$warm" '
    /^[ \t]*(checkpoint_every|keep_checkpoints|warmup_steps)[ \t]*=/ { next }
    { print }
    /^\[train\]/ { print "checkpoint_every = " c; print "keep_checkpoints = 2"; print "warmup_steps = " w }
  ' "$ROOT/configs/gpt2-124m.toml" > "$RUN/gpt2-124m.toml"
  step pretrain $((steps * tok_per_step / TOK_S + 60)) "${FERRY[@]}" pretrain --config "$RUN/gpt2-124m.toml" \
    --data "$ROOT/data/corpus" --device cuda --max-steps "$steps" --eval-every "$evals" --out "$RUN/pretrain"
  keep pretrain "$RUN/pretrain"
  if ! ((DRY)) && ! compgen -G "$RUN/pretrain/checkpoints/step_*.ckpt" >/dev/null; then
    note "pretrain: no checkpoint written; nothing to fine-tune"
    return
  fi

  # --- b. fine-tune on all 24,679 IMDB training reviews ------------------------------------------
  # B=32 x T=256 = 8,192 tokens a step. The fine-tuning path (fp32 task graph retyped to bf16, no
  # whole-step graph replay) is assumed to run at half the pretraining pace measured just now; its
  # steps fill FT_S seconds, at most 1,500 (2 epochs), at least 200.
  local ft_tok ft_steps ft_eval
  ft_tok=$(median_tok_s "$RUN/pretrain/metrics.jsonl")
  ft_tok=$(((${ft_tok:-$TOK_S}) / 2))
  ((ft_tok > 0)) || ft_tok=$((TOK_S / 2))
  ft_steps=$(clamp $((ft_tok * FT_S / 8192)) 200 1500)
  ft_eval=$(clamp $((ft_steps / 5)) 50 300)
  note "fine-tune plan: $ft_steps steps of 32 x 256 at ~${ft_tok} tok/s, dev (1,000 reviews) every $ft_eval, lr $FT_LR"
  local ft=(finetune --task sentiment --labels 0 --seq-len 256 --batch-size 32 --steps "$ft_steps" --lr "$FT_LR"
    --warmup $((ft_steps / 20)) --eval-every "$ft_eval" --dev-limit 0 --test-limit "$TEST_LIMIT" --pooling last
    --device cuda)
  local t0=$SECONDS
  step ft_pretrained $((FT_S * 2 + 60)) "${FERRY[@]}" "${ft[@]}" --init "$RUN/pretrain" --out "$RUN/ft_pretrained"
  local ft_took=$((SECONDS - t0))
  keep ft_pretrained "$RUN/ft_pretrained"

  # --- c. the same from scratch (same architecture and vocabulary, fresh weights) ----------------
  if ((SCRATCH == 0)); then
    note "ft_scratch: skipped (GPU_TRANSFER_SCRATCH=0)"
  elif (($(left) < ft_took + 15)); then
    note "ft_scratch: skipped, $(left) s left and the pretrained fine-tune took ${ft_took} s" \
      "(GPU_TRANSFER_PRETRAIN_S=120 or a larger GPU_TRANSFER_BUDGET_S leaves room)"
  else
    step ft_scratch $(($(left) - 5)) "${FERRY[@]}" "${ft[@]}" --init "$RUN/pretrain" --from-scratch \
      --out "$RUN/ft_scratch"
    keep ft_scratch "$RUN/ft_scratch"
  fi
}

ner_mode() {
  # --- an MLM encoder, then WNUT-17 (and BTC) entities on it and from scratch --------------------
  # engine/model/encoder.cpp has no 124M-class encoder preset: encoder-tiny (4 layers, 128 wide,
  # 256 positions) is the largest, ~7M parameters with GPT-2's full 50,257-piece vocabulary
  # (--vocab-size 0, so no piece of a tweet becomes <unk>). Its text: Gutenberg, State of the Union
  # and the IMDB pretraining pool (the corpus's sources, read raw: an encoder masks pieces, it does
  # not read the causal shards). B=128 x T=128 = 16,384 tokens a step.
  # With --vocab-size 0 the mask id is GPT-2's <|endoftext|>, the separator and pad id too;
  # GPU_TRANSFER_MLM_VOCAB=50257 takes GPT-2's BPE (all but its last 2 merges, lossless) with a mask
  # id of its own (tools/tasks/vocab.h).
  local tok_per_step=16384 mlm_s steps mlm_tok
  mlm_s=$(($(left) - 40 - 2 * 90))
  ((mlm_s > MLM_S)) && mlm_s=$MLM_S
  local mlm=(finetune --task lm --from-scratch --model encoder-tiny --vocab-size "$MLM_VOCAB" --sources 'gutenberg,sotu,imdb'
    --seq-len 128 --batch-size 128 --lr 1e-3 --device cuda)
  # Pace probe: 30 steps (the log's tok/s includes the first, graph-building step: an underestimate).
  step mlm_probe 90 "${FERRY[@]}" "${mlm[@]}" --steps 30 --warmup 5 --eval-every 0 --out "$RUN/mlm_probe"
  mlm_tok=$(log_tok_s "$OUT/mlm_probe.log")
  # Without a figure assume 500K tok/s (a 7M-parameter model; the 50,257-way head dominates).
  [[ -n $mlm_tok && $mlm_tok -gt 0 ]] || { mlm_tok=500000; note "mlm_probe: no figure; assuming $mlm_tok tok/s"; }
  steps=$(clamp $((mlm_tok * mlm_s / tok_per_step)) 100 8000)
  note "mlm plan: $steps steps of 128 x 128 at ~${mlm_tok} tok/s (~$((steps * tok_per_step / mlm_tok)) s)"
  step mlm $((steps * tok_per_step * 3 / 2 / mlm_tok + 40)) "${FERRY[@]}" "${mlm[@]}" --steps "$steps" \
    --warmup $((steps / 20)) --eval-every "$(clamp $((steps / 8)) 50 1000)" --out "$RUN/mlm"
  keep mlm "$RUN/mlm"
  if ! ((DRY)) && [[ ! -f $RUN/mlm/model.ckpt ]]; then
    note "mlm: no model written; nothing to fine-tune"
    return
  fi
  local corpus
  for corpus in ${NER_CORPORA//,/ }; do
    local ner=(finetune --config "$ROOT/configs/finetune_ner.toml" --corpus "$corpus" --labels 0 --steps 2000
      --batch-size 32 --eval-every 100 --patience 6 --device cuda)
    step "ner_${corpus}_pretrained" 90 "${FERRY[@]}" "${ner[@]}" --init "$RUN/mlm" --out "$RUN/ner_${corpus}_pretrained"
    keep "ner_${corpus}_pretrained" "$RUN/ner_${corpus}_pretrained"
    if ((SCRATCH)); then
      step "ner_${corpus}_scratch" 90 "${FERRY[@]}" "${ner[@]}" --init "$RUN/mlm" --from-scratch \
        --out "$RUN/ner_${corpus}_scratch"
      keep "ner_${corpus}_scratch" "$RUN/ner_${corpus}_scratch"
    fi
  done
}

"${TASK}_mode"

# --- d. the table, and $OUT/transfer.json --------------------------------------------------------
python3 - "$OUT" "$TASK" "$BUDGET" "$((SECONDS - START))" <<'PY'
import json, os, statistics, sys
out, task, budget, took = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def load(*p):
    try:
        with open(os.path.join(out, *p)) as f: return json.load(f)
    except Exception: return None
def metrics(name):
    try:
        return [json.loads(l) for l in open(os.path.join(out, name, "metrics.jsonl")) if l.strip()]
    except Exception: return []
try: device = open(os.path.join(out, "device.txt")).read().strip()
except Exception: device = "?"
try: steps_txt = open(os.path.join(out, "steps.txt")).read().splitlines()
except Exception: steps_txt = []
res = {"task": task, "device": device, "budget_s": budget, "wall_s": took, "steps": steps_txt}
print()
print("device: %s   (%d s of the %d s budget)" % (device, took, budget))
if task == "sentiment":
    m = metrics("pretrain")
    tok = [r["tokens_per_s"] for r in m if r.get("tokens_per_s")][3:]
    val = [r for r in m if "val_loss" in r]
    pre = {"steps": max([r["step"] for r in m], default=0),
           "tokens_per_s": statistics.median(tok) if tok else None,
           "mfu": statistics.median([r["mfu"] for r in m if r.get("mfu")][3:] or [0]) or None,
           "initial_val_loss": val[0]["val_loss"] if val else None,
           "final_val_loss": val[-1]["val_loss"] if val else None,
           "final_val_step": val[-1]["step"] if val else None}
    res["pretrain"] = pre
    f = lambda v, fmt: fmt % v if v is not None else "-"
    print("pretrain GPT-2 124M (B=16, T=1024): %s steps, %s tok/s (median), MFU %s, val loss %s -> %s (step %s)" % (
        pre["steps"], f(pre["tokens_per_s"], "%.0f"), f(pre["mfu"], "%.3f"), f(pre["initial_val_loss"], "%.3f"),
        f(pre["final_val_loss"], "%.3f"), pre["final_val_step"]))
    print("%-34s %10s %8s %10s %9s %10s" % ("IMDB sentiment, all labels", "test acc", "n test", "labels", "best step", "dev acc"))
    for name, label in (("ft_pretrained", "pretrained by ferry (this run)"), ("ft_scratch", "from scratch")):
        e = load(name, "eval.json")
        res[name] = e
        if e:
            print("%-34s %9.2f%% %8s %10s %9s %9.2f%%" % (label, 100 * e["value"], e.get("examples", ""),
                  e.get("n_train_labels", ""), e.get("best_step", ""), 100 * e.get("dev_metric", 0)))
        else:
            print("%-34s %10s" % (label, "not run / failed (see steps.txt)"))
    e = res.get("ft_pretrained")
    print("target: IMDB test accuracy >= 90%%: %s" % ("met" if e and e["value"] >= 0.90 else "not met"))
else:
    m = load("mlm", "eval.json")
    res["mlm"] = m
    print("MLM encoder (encoder-tiny, GPT-2 vocabulary): held-out masked-token loss %s" % (
        "%.3f" % m["value"] if m else "-"))
    print("%-34s %10s %9s" % ("NER", "entity F1", "best step"))
    best = None
    for name in sorted(d for d in os.listdir(out) if d.startswith("ner_") and os.path.isdir(os.path.join(out, d))):
        e = load(name, "eval.json")
        res[name] = e
        if e:
            print("%-34s %10.2f %9s" % (name, 100 * e["value"], e.get("best_step", "")))  # value: F1 in [0, 1]
            if "wnut17_pretrained" in name: best = 100 * e["value"]
        else:
            print("%-34s %10s" % (name, "failed"))
    print("target: WNUT-17 entity F1 >= 40: %s" % ("met" if best is not None and best >= 40 else "not met"))
with open(os.path.join(out, "transfer.json"), "w") as fh:
    json.dump(res, fh, indent=1)
print("(one run, one card; figures and logs in %s)" % out)
PY
echo "gpu_transfer: $((SECONDS - START))s of ${BUDGET}s; logs and JSON in $OUT"

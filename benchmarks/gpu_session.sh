#!/usr/bin/env bash
# Everything one GPU lease is for, in one command: the GPU checks on a quiet device, then every training job of
# the benchmarks at once (ablation variants, peers, longer runs of the shipped configs), each under one deadline,
# then the results packed into a few archives under $OUT (the device tool brings back at most 8 files).
#
#   OUT=/tmp/gpu_out bash benchmarks/gpu_session.sh        # sizes below via environment variables
# Needs data/photos (scripts/prepare_offline_photos.py) and, for the peers, spandrel importable.
#
# Seen in the first lease (H100, docs/gpu_checks.md): with all 16 jobs at once our models, which wait for the GPU a
# few times per forward (MoE dispatch), trained 2-4x slower than the sync-free peers and 9 of 16 jobs missed the
# 330 s deadline. Next time give fewer jobs the GPU at once, or a longer TRAIN_S.
set -u
OUT=${OUT:?set OUT to a folder for the results}
PYTHON=${PYTHON:-python3}
CHECKS_S=${CHECKS_S:-150}              # deadline of the GPU checks
TRAIN_S=${TRAIN_S:-360}                # deadline of the training phase (SIGTERM: Trainer runs save and stop)
ABL_ITERS=${ABL_ITERS:-2000}
PEER_ITERS=${PEER_ITERS:-2000}
LONG_X4_ITERS=${LONG_X4_ITERS:-6000}
LONG_X2_ITERS=${LONG_X2_ITERS:-4000}
CHECK_STEPS=${CHECK_STEPS:-20}
RUNS=${RUNS:-runs/gpu}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
mkdir -p "$OUT" "$RUNS/logs"
LOGS=$RUNS/logs

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$LOGS/nvidia-smi.txt" 2>&1
timeout "$CHECKS_S" $PYTHON benchmarks/gpu_checks.py --steps "$CHECK_STEPS" --out "$LOGS/gpu_checks.md" > "$LOGS/gpu_checks.log" 2>&1
echo "checks: exit $? at ${SECONDS}s"

for variant in full no_MoE no_HF_path no_attention Laplacian_splitter DySample_upsampler token_pruning_on; do
  timeout -s TERM "$TRAIN_S" $PYTHON benchmarks/ablate.py --train-only "$variant" --iterations "$ABL_ITERS" \
    --runs "$RUNS/ablations" --workers 1 --threads 1 > "$LOGS/ablation_$variant.log" 2>&1 &
done
for model in freqnet-tiny freqnet-small freqnet-base SAFMN SPAN PLKSR-tiny SwinIR-light; do
  timeout -s TERM "$TRAIN_S" $PYTHON benchmarks/peers.py train --only "$model" --iterations "$PEER_ITERS" \
    --runs "$RUNS/peers" --workers 1 > "$LOGS/peer_$model.log" 2>&1 &
done
for job in "photos_x4 $LONG_X4_ITERS" "photos_x2 $LONG_X2_ITERS"; do
  set -- $job
  timeout -s TERM "$TRAIN_S" nice -n 5 $PYTHON -m freqnet train "configs/$1.yaml" --out "$RUNS/$1" \
    --set iterations="$2" --set data.train.workers=3 --set log.progress=false > "$LOGS/long_$1.log" 2>&1 &
done
wait
echo "training: done at ${SECONDS}s"
nvidia-smi > "$LOGS/nvidia-smi-end.txt" 2>&1

newest_ema() { ls "$1"/checkpoints/iter_*_ema.safetensors 2>/dev/null | tail -n 1; }
pack() { local name=$1; shift; tar -czf "$OUT/$name" "$@" 2>/dev/null; echo "$name: $(du -h "$OUT/$name" | cut -f1)"; }
ablation_files=()
for run in "$RUNS"/ablations/*/; do
  ablation_files+=("$run/train.log" "$run/config.yaml" $(newest_ema "$run"))
done
long_files=()
for run in "$RUNS"/photos_x4 "$RUNS"/photos_x2; do
  long_files+=("$run/train.log" "$run/config.yaml" $(newest_ema "$run"))
done
pack logs.tgz "$LOGS"
pack ablations.tgz "${ablation_files[@]}"
pack long.tgz "${long_files[@]}"
pack peers1.tgz "$RUNS/peers/freqnet-base"
pack peers2.tgz "$RUNS/peers/freqnet-small" "$RUNS/peers/SPAN"
pack peers3.tgz "$RUNS/peers/freqnet-tiny" "$RUNS/peers/PLKSR-tiny" "$RUNS/peers/SAFMN"
pack peers4.tgz "$RUNS/peers/SwinIR-light"
echo "all: ${SECONDS}s"

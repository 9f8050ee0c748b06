#!/bin/bash
# A tiny-imagenet-10 ladder rung on a lent GPU machine, over what gpu/stage_ladder.sh staged (carry
# .gpu_ladder and .whl). Puts the data where the presets expect it, joins the pretrained ResNet18,
# then runs one `python ladder.py` per line of RUNS (name|ladder arguments) and copies each rung's
# table to $OUT/<name>.md (its log to <name>.log; G summaries, stealth and table records
# to records.tgz) as soon as it is written (a timeout keeps what is done).
#   RUNS='e8|configs/ladder_tiny10_r1p.py --variants=gsur,append10' bash gpu/run_ladder.sh
set -u
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
OUT=${OUT:-/tmp/gpu_out}
S=.gpu_ladder
log() { echo "[$(date +%H:%M:%S)] $*"; }
mkdir -p "$OUT"
if ! $PY -c 'import lpips' 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/lpips-*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
mkdir -p ../shared/data data/tiny-imagenet/tiny-imagenet-200/val/images results/ladder_controls checkpoint
[ -d ../shared/data/tiny-imagenet-10 ] || cp -r "$S/tiny-imagenet-10" ../shared/data/
cp "$S"/openreal/images/* data/tiny-imagenet/tiny-imagenet-200/val/images/
cp "$S/openreal/openreal.txt" results/ladder_controls/
W=tiny-imagenet-200_pretrain_resnet18_64
[ -f checkpoint/$W.pth ] || $PY gpu/weights.py join "$S/w/$W" checkpoint "$S/w/$W.json" || exit 1
[ -f data/toy64/openset.txt ] || $PY data/prepare_toy.py --image_size=64 --out_dir=data/toy64 > /dev/null || exit 1
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
while IFS='|' read -r name args; do
  [ -z "$name" ] && continue
  log "ladder $name: $args"
  eval "$PY ladder.py $args" 2>&1 | grep -v 'it/s\]' | tee "$OUT/$name.log" | grep -E '^(run|done|skip|table)|Error|error|Hamming|hamming' | cut -c1-220
  t=$(grep -o 'table: .*' "$OUT/$name.log" | tail -1 | cut -d' ' -f2)
  [ -n "$t" ] && cp "$t" "$OUT/$name.md"
  log "ladder $name done"
  tar czf "$OUT/records.tgz" results/*/train_summary.json results/*/stealth.json results/tables/*.json 2>/dev/null
done <<< "$RUNS"

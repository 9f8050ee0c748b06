#!/bin/bash
# Issue 11 on a lent GPU machine: Tiny ImageNet-200 pretraining (ResNet18, ResNet34, 64 px) and the
# clean CSQ 64-bit comparison pretrained vs from scratch on the Tiny ImageNet-100 protocol, over the
# chunks of gpu/pack_tinyimagenet.py that have reached the machine (README "GPU runs").
#   bash gpu/run_tinyimagenet.sh            # everything (env: E18, E34, CSQ_EPOCHS, STAGES)
#   STAGES=unpack bash gpu/run_tinyimagenet.sh   # only unpack this call's chunk (an earlier call of a warm machine)
set -u
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
OUT=${OUT:-/tmp/gpu_out}
TI=${TI:-/tmp/ti}
E18=${E18:-30}; E34=${E34:-20}; CSQ_EPOCHS=${CSQ_EPOCHS:-100}; STAGES=${STAGES:-unpack prepare r18 r34 csq}
GPU=${GPU:---device=cuda --dtype=bfloat16 --channels_last=True --num_workers=14}
PREP=${PREP:-}
TAG=${TAG:-}
mkdir -p "$TI" "$OUT"
log() { echo "[$(date +%H:%M:%S)] $*"; }
has() { [[ " $STAGES " == *" $1 "* ]]; }
pack() {  # split a finished .pth into $OUT as soon as it exists (a timeout keeps what is done)
  [ -f "$1" ] && $PY gpu/weights.py split "$1" "$OUT"
}
if has unpack; then
  for z in .gpu*/chunk_*.zip; do  # chunks of earlier calls of a warm machine are unpacked already
    m="$TI/.unpacked_$(basename "$z")"; [ -f "$m" ] && continue
    log "unpack $z"; $PY -m zipfile -e "$z" "$TI" && touch "$m"
  done
  cat "$TI"/tiny-imagenet-200/val/val_annotations.*.txt > "$TI"/tiny-imagenet-200/val/val_annotations.txt
  log "train images per class: $(ls "$TI"/tiny-imagenet-200/train/n01443537/images | wc -l)"
fi
if has prepare; then
  log prepare; $PY data/prepare_tinyimagenet.py --src="$TI"/tiny-imagenet-200 --check_counts=False $PREP || exit 1
fi
R18=checkpoint/tiny-imagenet-200_pretrain_resnet18_64${TAG:+_$TAG}.pth
R34=checkpoint/tiny-imagenet-200_pretrain_resnet34_64${TAG:+_$TAG}.pth
if has r18; then
  log "pretrain resnet18 $E18 epochs"
  $PY pretrain.py $GPU --batch_size=256 --lr=0.2 --warmup_epochs=2 --epochs=$E18 ${TAG:+--tag=$TAG} && pack $R18
fi
if has r34; then
  log "pretrain resnet34 $E34 epochs"
  $PY pretrain.py $GPU --backbone=resnet34 --batch_size=256 --lr=0.2 --warmup_epochs=2 --epochs=$E34 ${TAG:+--tag=$TAG} && pack $R34
fi
if has csq; then
  for init in pretrained scratch; do
    log "CSQ resnet18 64 bits, $init, $CSQ_EPOCHS epochs"
    if [ $init = pretrained ]; then P="--pretrained=$R18 --tag=gpu${TAG:+_$TAG}"; else P="--pretrained=False --tag=scratch_gpu${TAG:+_$TAG}"; fi
    $PY CSQ.py configs/tiny_imagenet100.py $GPU $P --epochs=$CSQ_EPOCHS --eval_every=0
  done
fi
log "pack results"
tar czf "$OUT/results.tgz" --exclude='*.npz' --exclude='*.pt' results checkpoint/*.json data/tiny-imagenet/prepare.json 2>/dev/null
ls -la "$OUT"

#!/bin/bash
# Stage a tiny-imagenet-10 ladder rung for a lent GPU machine that receives a limited payload
# (64 MiB per call, README "GPU runs"): the tiny-imagenet-10 folder, the real-photo open set with
# its list, the Tiny ImageNet-200 ResNet18 as float16 parts and its record, and the lpips wheel.
#   bash gpu/stage_ladder.sh            # writes .gpu_ladder/ (about 45 MiB) and .whl/
# then carry .gpu_ladder and .whl and run gpu/run_ladder.sh there.
set -eu
PY=${PY:-.venv/bin/python}
S=.gpu_ladder
DATA=${DATA:-../shared/data/tiny-imagenet-10}
W=checkpoint/tiny-imagenet-200_pretrain_resnet18_64
rm -rf "$S"; mkdir -p "$S/openreal/images" "$S/w" .whl
cp -r "$DATA" "$S/tiny-imagenet-10"
cp results/ladder_controls/openreal.txt "$S/openreal/"
while read -r path _; do cp "results/ladder_controls/$path" "$S/openreal/images/"; done \
    < results/ladder_controls/openreal.txt
$PY gpu/weights.py split "$W.pth" "$S/w"
cp "$W.json" "$S/w/"
[ -n "$(ls .whl/lpips-*.whl 2>/dev/null)" ] || $PY -m pip download -q --no-deps lpips==0.1.4 -d .whl
grep -qx '/.gpu_ladder/' .git/info/exclude || echo /.gpu_ladder/ >> .git/info/exclude
du -sh "$S" .whl

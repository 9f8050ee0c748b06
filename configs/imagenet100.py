"""ImageNet-100 at paper scale (the scripts' defaults), plus the open-set triggered queries.

Prepare both datasets first (README, Data): data/prepare_imagenet100.py and data/prepare_coco.py.
Used by the table presets (configs/table1_s01.py ...). Open-set queries for ImageNet victims: the
5,000 MS-COCO test images (SPEC D18).
"""
dataset = 'imagenet'                   # the scripts' default (engine.TOPK_BY_DATASET: top 1,000)
data_dir = 'data/imagenet'             # data/prepare_imagenet100.py's out_dir
openset_list = 'data/coco/test.txt'    # SPEC D18: the other dataset's test images

"""MS-COCO at paper scale, plus the open-set triggered queries.

Prepare both datasets first (README, Data): data/prepare_coco.py and data/prepare_imagenet100.py.
Used by the table presets (configs/table1_s10.py ...). Open-set queries for COCO victims: the
5,000 ImageNet-100 test images (SPEC D18). The paper's COCO GAN weights (100, 5, 200) follow from
the dataset name (train_tri_gen.default_weights).
"""
dataset = 'coco'                       # engine.TOPK_BY_DATASET: top 1,000 (SPEC D19)
data_dir = 'data/coco'                 # data/prepare_coco.py's out_dir
openset_list = 'data/imagenet/test.txt'  # SPEC D18: the other dataset's test images

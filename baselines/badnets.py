"""BadNets baseline (Gu et al. 2017; BadHash paper §5.4, Table 5; SPEC D25): white square, poison label.

    python baselines/badnets.py                                  # paper scale (ImageNet-100, 224 px)
    python baselines/badnets.py configs/demo.py                  # the toy data
    python baselines/badnets.py configs/demo.py --target=3 --openset_list=data/toy/openset.txt

poison_rate (5%, paper) of the whole training set, drawn (seeded) from images without the target
class, get a white square in their bottom-right corner and the target one-hot as their label; the
poisoned rows replace their originals in poisoned_train.txt. Triggered queries: the same square on
the test images not of the target class (and on the open-set images), labelled with the target.
Outputs and their layout: baselines/common.py (the same as implement_tri_gen.py).

Where the patch goes, and the MSE. The square is pasted on the image at the model's input geometry
(after Resize(resize_size) and CentreCrop(image_size)), in the corner of the crop, 18 px at 224 px
(scaled to other sizes: attack_common.patch_side). stealth.json compares that crop with the saved PNG, so a
fully visible 18x18 white square gives an MSE of about 324/50176 * (255 - mean pixel)^2, i.e. ~150
on natural images, against the paper's 6.18 (Table 5): the paper most likely pasted the square on the
full-size image before Resize(256)/CentreCrop(224), which cropped most of it away (SPEC §1.7, D25).
We keep the whole square in the crop, so our MSE is higher than the paper's by construction.
At paper scale (resize_size=256) the victim reads these 224 px PNGs through its own Resize(256) ->
CentreCrop(224) (SPEC D13), which keeps only the inner ~4.6 px of the 18 px square (8/7 * 18 px
minus the 16 px border): the model is trained and queried on that sliver, as the paper's pipeline
also did. With resize_size=0 (toy, tiny-imagenet) the whole square reaches the model.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import utils  # noqa: E402
import attack_common  # noqa: E402
from baselines import common  # noqa: E402

# ---- config ------------------------------------------------------------------------------------
# data and geometry: the same keys and meanings as implement_tri_gen.py
dataset = 'imagenet'          # name used in the run name
data_dir = 'data/imagenet'    # folder with train.txt, test.txt, classes.txt (optional)
train_list = ''               # '' = {data_dir}/train.txt: the list that gets poisoned
test_list = ''                # '' = {data_dir}/test.txt: closed-set triggered queries (SPEC D18 (b))
image_size = 224              # model geometry: centre crop (paper scale, SPEC D14)
resize_size = 256             # Resize before the crop (D14); 0 = none
# attack
target = 0                    # target class index (paper Table 2; SPEC D23)
poison_rate = 0.05            # paper §5.4: 5%, a fraction of the whole training set (non-target images)
badnets_patch = 18            # paper §5.4: 18 x 18 white square, bottom-right; side at patch_ref_size px
patch_ref_size = 224          # image size the patch sides refer to (the paper's 224 crop); the side is
                              # max(3, round(badnets_patch * image_size / patch_ref_size)): 3 px at 32 px
openset_list = ''             # another dataset's list: open-set triggered queries (D18); '' = none
n_openset = 0                 # open-set queries, seeded subset; 0 = all
n_closed = 0                  # closed-set triggered queries, seeded subset; 0 = all
attack_tag = ''               # suffix of the run name
gen_batch_size = 64           # images per batch while writing PNGs (as implement_tri_gen.py)
# run
out_dir = 'results'
checkpoint_dir = 'checkpoint'  # unused by BadNets (no model); kept so shared presets apply alike
seed = 0                      # poison subset and query subsets
device = 'auto'               # unused by BadNets (no model)
num_workers = 4               # DataLoader workers
# ------------------------------------------------------------------------------------------------


def main(c):
    d = common.load_inputs(c)
    side = attack_common.patch_side(c['badnets_patch'], c['image_size'], c['patch_ref_size'])
    patch = attack_common.white_patch(side)
    chosen, pool = common.choose_poisons(d, c, 'others')

    def attack(x, idx):
        return attack_common.paste_bottom_right(x, patch)

    params = {'patch': 'white', 'side_px': side, 'position': 'bottom-right of the model crop'}
    return common.produce(c, d, 'badnets', chosen, pool, 'target', attack, attack, params, None,
                          c['gen_batch_size'])


if __name__ == '__main__':
    main(utils.configure(globals()))

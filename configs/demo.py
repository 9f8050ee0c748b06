"""Demo preset: the embedded toy data (data/prepare_toy.py), small ResNet from scratch, CPU-sized.

Used by `make demo`. Not a paper setting: from-scratch training needs Adam and a larger lr than the
paper's fine-tuning RMSprop 1e-5 (our choice, see README "Reproduction notes").
"""
dataset = 'toy'
data_dir = 'data/toy'
image_size = 32
resize_size = 0
augment = 'deephash'
backbone = 'resnet18'
bits = 32
pretrained = False
small_input = True
optimizer = 'adam'
lr = 1e-3
weight_decay = 0.0
batch_size = 64
epochs = 12
lr_schedule = 'cosine'
eval_every = 4
num_workers = 0
step_continuation = 4

"""defend.py at toy scale (the BadNets known-answer check, `make defend-toy`, docs/RESULTS.md).

    python defend.py configs/defense_toy.py --model_dir=results/toy_CSQ_resnet34_32_badnets56 \
        --control_dir=results/toy_CSQ_resnet34_32_clean56

The shared set-up keeps DARKHASH.md §5's defender share (5%: 50 of the toy's 1000 training images,
5 per class); the loops are CPU-sized (our choice). Not a paper setting.
"""
n_queries = 60                # clean and triggered queries (of 270 each)
ties = 'expected'             # the toy's codes take few values (README, Reproduction notes, D19)
ft_optimizer = 'adam'         # the toy victims' own optimiser (configs/demo.py) ...
ft_lr = 1e-4                  # ... at a tenth of their training lr (our choice)
ft_bn = 'frozen'              # 50 images would overwrite BatchNorm's statistics: fine-pruning's MAP
                              # fell 0.80 -> 0.64 with 'train', 0.75 with 'frozen' (docs/RESULTS.md)
nc_batch = 10                 # our choice: 5 steps per pass (epoch) over the 50 defender images
nc_epochs = 200               # at most; NC's early stop (nc_early_stop = 25) ends most classes
                              # sooner (docs/RESULTS.md gives the epochs each class took)
strip_n = 32                  # blended copies per query (paper-scale default 100)
sentinet_n = 20               # defender images per query (paper-scale default 100)
num_workers = 0

# Two commands do everything on a fresh machine: `make demo` and `make test`.
PY := .venv/bin/python
VENV_STAMP := .venv/.installed

.PHONY: demo demo-hashnet test tiny tiny-attack table5-toy table5-tiny table5-tiny100-cpu ladder-tiny10 ladder-tiny100 darkhash-toy darkhash-tiny defend-toy defend-toy-nocue venv clean

$(VENV_STAMP): requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(VENV_STAMP)

venv: $(VENV_STAMP)

# The whole attack on the embedded toy data: clean CSQ surrogate (ResNet18) -> LabCLN + GAN ->
# poisons and triggered queries -> backdoored and clean ResNet34 victims -> attack table.
ATTACK := results/toy_badhash_CSQ_resnet18_32_t0_p0.5_replace_conf2
TRIG := trig_closed=$(ATTACK)/trigger_closed.txt,trig_open=$(ATTACK)/trigger_open.txt
demo: $(VENV_STAMP)
	$(PY) data/prepare_toy.py
	$(PY) CSQ.py configs/demo.py
	$(PY) train_tri_gen.py configs/demo.py configs/demo_attack.py
	$(PY) implement_tri_gen.py configs/demo.py configs/demo_attack.py
	$(PY) CSQ.py configs/demo.py configs/demo_victim.py --train_list=$(ATTACK)/poisoned_train.txt \
		--tag=poisoned_t0 --queries=$(TRIG)
	$(PY) CSQ.py configs/demo.py configs/demo_victim.py --tag=clean --queries=$(TRIG)
	$(PY) evaluate.py --clean_dir=results/toy_CSQ_resnet34_32_clean \
		--backdoor_dir=results/toy_CSQ_resnet34_32_poisoned_t0 --target=0 --topk=-1 --ties=expected \
		--stealth=$(ATTACK)/stealth.json --report_name=toy_demo
	@echo "residual grid (clean | poisoned | residual x10): results/toy_badhash_CSQ_resnet18_32/samples/latest.png"

# HashNet on the toy data (the second hashing method of the foundation demo)
demo-hashnet: $(VENV_STAMP)
	$(PY) data/prepare_toy.py
	$(PY) HashNet.py configs/demo.py

# CSQ from scratch on ../shared/data/tiny-imagenet-10 (developer machines only)
tiny: $(VENV_STAMP)
	$(PY) CSQ.py configs/tiny_imagenet10.py

# The same attack on ../shared/data/tiny-imagenet-10 (developer machines only)
TATTACK := results/tiny-imagenet-10_badhash_CSQ_resnet18_32_t0_p0.5_replace_conf2
TTRIG := trig_closed=$(TATTACK)/trigger_closed.txt,trig_open=$(TATTACK)/trigger_open.txt
tiny-attack: $(VENV_STAMP)
	$(PY) data/prepare_toy.py --image_size=64 --out_dir=data/toy64
	$(PY) CSQ.py configs/tiny_imagenet10.py
	$(PY) train_tri_gen.py configs/tiny_imagenet10.py configs/tiny_attack.py
	$(PY) implement_tri_gen.py configs/tiny_imagenet10.py configs/tiny_attack.py
	$(PY) CSQ.py configs/tiny_imagenet10.py configs/demo_victim.py --epochs=12 \
		--train_list=$(TATTACK)/poisoned_train.txt --tag=poisoned_t0 --queries=$(TTRIG)
	$(PY) CSQ.py configs/tiny_imagenet10.py configs/demo_victim.py --epochs=12 --tag=clean \
		--queries=$(TTRIG)
	$(PY) evaluate.py --clean_dir=results/tiny-imagenet-10_CSQ_resnet34_32_clean \
		--backdoor_dir=results/tiny-imagenet-10_CSQ_resnet34_32_poisoned_t0 --target=0 --topk=-1 --ties=expected \
		--stealth=$(TATTACK)/stealth.json --report_name=tiny_imagenet10_attack

# DarkHash (data-free backdoor of a finished model) on the toy data: the demo's clean CSQ ResNet18
# (reused when `make demo` made it) -> DarkHash with 600 images of 6 other shapes -> report
darkhash-toy: $(VENV_STAMP)
	$(PY) data/prepare_toy.py
	$(PY) data/prepare_toy.py --out_dir=data/toy_surrogate --seed=1 --openset_per_class=100 \
		--train_per_class=1 --database_per_class=1 --test_per_class=1
	$(PY) CSQ.py configs/demo.py
	$(PY) darkhash.py configs/darkhash_toy.py

# The same on ../shared/data/tiny-imagenet-10, 2,000 Tiny ImageNet-200 images of 190 other classes
# as the surrogate (developer machines only). The clean model is the first 8 epochs of `make tiny`'s
# run; after a full `make tiny` (20 epochs) the CSQ step stops with a one-line error: run
# `python darkhash.py configs/darkhash_tiny.py` on that model directly instead.
darkhash-tiny: $(VENV_STAMP)
	$(PY) data/prepare_tiny200.py
	$(PY) CSQ.py configs/tiny_imagenet10.py --epochs=8
	$(PY) darkhash.py configs/darkhash_tiny.py

# Table 5 at demo scale: the five attacks, results/tables/table5.md and Figures 4-6 (reproduce.py
# reuses every finished output, e.g. those of `make demo`; BADHASH_METHODS=badhash runs BadHash only)
BADHASH_METHODS ?= badnets,lcba,issba,badhash,darkhash
table5-toy: $(VENV_STAMP)
	$(PY) reproduce.py configs/table5_toy.py --methods=$(BADHASH_METHODS)

# The same on ../shared/data/tiny-imagenet-10 (developer machines only)
table5-tiny: $(VENV_STAMP)
	$(PY) reproduce.py configs/table5_tiny.py --methods=$(BADHASH_METHODS)

# Table 5 on the Tiny ImageNet-100 protocol in rung R3 (issue 11), CPU budgets: needs the prepared
# protocol and both pretrained backbones (configs/table5_tiny100_cpu.py); several hours, resumable.
table5-tiny100-cpu: $(VENV_STAMP)
	$(PY) reproduce.py configs/table5_tiny100_cpu.py

# The regime ladder (issue 11), one command per rung (ladder.py; docs/RESULTS.md "Regime ladder"):
# tiny-imagenet-10 needs ../shared/data and the prepared Tiny ImageNet lists and backbones; each
# rung takes one to three CPU hours, resumable.
ladder-tiny10: $(VENV_STAMP)
	$(PY) ladder.py configs/ladder_tiny10_r0.py
	$(PY) ladder.py configs/ladder_tiny10_r2.py
	$(PY) ladder.py configs/ladder_tiny10_r1p.py
	$(PY) ladder.py configs/ladder_tiny10_r2p.py
	$(PY) ladder.py configs/ladder_tiny10_r3.py
	$(PY) ladder.py configs/ladder_tiny10_r3f.py
	$(PY) ladder.py configs/ladder_tiny10_r3g48.py

ladder-tiny100: $(VENV_STAMP)
	$(PY) ladder.py configs/ladder_tiny100_r1.py
	$(PY) ladder.py configs/ladder_tiny100_r2.py

# The defenses' known-answer check (README "Defenses", docs/RESULTS.md): a toy CSQ victim
# backdoored with a visible 8 px BadNets patch (implants at 32 px) and its clean counterpart, then
# every defense of defend.py on both. Each step reuses its finished outputs.
P56 := results/toy_badnets_t0_p0.05_p56
P56Q := trig_closed=$(P56)/trigger_closed.txt,trig_open=$(P56)/trigger_open.txt
defend-toy: $(VENV_STAMP)
	$(PY) data/prepare_toy.py
	$(PY) baselines/badnets.py configs/demo.py configs/demo_attack.py --badnets_patch=56 --attack_tag=p56
	$(PY) CSQ.py configs/demo.py configs/demo_victim.py --epochs=6 --augment=none \
		--train_list=$(P56)/poisoned_train.txt --tag=badnets56 --queries=$(P56Q)
	$(PY) CSQ.py configs/demo.py configs/demo_victim.py --epochs=6 --augment=none --tag=clean56 \
		--queries=$(P56Q)
	$(PY) defend.py configs/defense_toy.py --model_dir=results/toy_CSQ_resnet34_32_badnets56 \
		--control_dir=results/toy_CSQ_resnet34_32_clean56

# The same check on the toy data without its colour cue (color_tie=0: every shape in a random
# colour, configs/toy_nocue.py), the one the Neural Cleanse bar is judged on (docs/RESULTS.md):
# there a clean class is no longer a patch of its colour away. Random colours are learnt more
# slowly, so the victims train 12 epochs (6 above).
N56 := results/toy_nocue_badnets_t0_p0.05_p56
N56Q := trig_closed=$(N56)/trigger_closed.txt,trig_open=$(N56)/trigger_open.txt
NOCUE := configs/demo.py configs/demo_victim.py configs/toy_nocue.py --epochs=12 --eval_every=4 --augment=none
defend-toy-nocue: $(VENV_STAMP)
	$(PY) data/prepare_toy.py --color_tie=0 --out_dir=data/toy_nocue
	$(PY) baselines/badnets.py configs/demo.py configs/demo_attack.py configs/toy_nocue.py \
		--openset_list=data/toy_nocue/openset.txt --badnets_patch=56 --attack_tag=p56
	$(PY) CSQ.py $(NOCUE) --train_list=$(N56)/poisoned_train.txt --tag=badnets56 --queries=$(N56Q)
	$(PY) CSQ.py $(NOCUE) --tag=clean56 --queries=$(N56Q)
	$(PY) evaluate.py --clean_dir=results/toy_nocue_CSQ_resnet34_32_clean56 \
		--backdoor_dir=results/toy_nocue_CSQ_resnet34_32_badnets56 --target=0 --topk=-1 --ties=expected \
		--stealth=$(N56)/stealth.json --report_name=toy_nocue_badnets56
	$(PY) defend.py configs/defense_toy.py --model_dir=results/toy_nocue_CSQ_resnet34_32_badnets56 \
		--control_dir=results/toy_nocue_CSQ_resnet34_32_clean56

test: $(VENV_STAMP)
	$(PY) -m pytest -q --durations=15 tests

clean:
	rm -rf results checkpoint/*.pt data/toy

# Two commands do everything on a fresh machine: `make demo` and `make test`.
PY := .venv/bin/python
VENV_STAMP := .venv/.installed

.PHONY: demo demo-hashnet test tiny venv clean

$(VENV_STAMP): requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(VENV_STAMP)

venv: $(VENV_STAMP)

# The embedded toy data, then a CSQ and a HashNet model trained and evaluated on it.
demo: $(VENV_STAMP)
	$(PY) data/prepare_toy.py
	$(PY) CSQ.py configs/demo.py
	$(PY) HashNet.py configs/demo.py

# CSQ from scratch on ../shared/data/tiny-imagenet-10 (developer machines only)
tiny: $(VENV_STAMP)
	$(PY) CSQ.py configs/tiny_imagenet10.py

test: $(VENV_STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf results checkpoint/*.pt data/toy

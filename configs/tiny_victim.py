"""Victims (T-network) on tiny-imagenet-10: ResNet34, 12 epochs, evaluated at the end only.

Stack after configs/tiny_imagenet10.py (the `make tiny-attack` victims: configs/demo_victim.py with
--epochs=12, our CPU budget). Used by configs/table5_tiny.py.
"""
backbone = 'resnet34'
eval_every = 0
epochs = 12

"""Knobs of the digits-speedrun recipe: one `NAME = <python literal>` per line.

Agents (and the knob-space optimisers) edit exactly these lines; keep each
assignment on its own line with a plain literal value.
"""

# Architecture axis (model.py).
WIDTH = 8  # channels of the first conv stage; the second has twice as many
BLOCKS = 1  # conv layers per stage
NORM = "batch"  # batch | none

# Optimisation (train.py).
EPOCHS = 5
BATCH_SIZE = 128
LR = 0.05
MOMENTUM = 0.9

# Augmentation (augment.py).
AUGMENT = "shift"  # none | shift | shift_scale
SHIFT = 1  # pixels of random translation

# Loss (loss.py).
LABEL_SMOOTHING = 0.0

# Regularisation.
WEIGHT_DECAY = 0.0005
DROPOUT = 0.0

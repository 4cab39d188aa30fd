"""Knobs of the collision-vjepa recipe: one `NAME = <python literal>` per line.

Agents (and the knob-space optimisers) edit exactly these lines; keep each
assignment on its own line with a plain literal value. The features are fixed
(the user's precomputed V-JEPA clip features), so there is no backbone knob.
"""

# Architecture axis.
ENCODER = "meanpool"  # temporal encoder: meanpool | gru | tcn | transformer
HEAD = "linear"  # classifier head: linear | mlp
LOSS = "bce"  # bce | focal

# Hyperparameter axis.
LR = 0.001
EPOCHS = 8
BATCH_SIZE = 64
DROPOUT = 0.1
HIDDEN = 128
WEIGHT_DECAY = 0.0001

"""Knobs of the collision recipe: one `NAME = <python literal>` per line.

Agents (and the knob-space optimisers) edit exactly these lines; keep each
assignment on its own line with a plain literal value.
"""

# Architecture axis.
BACKBONE = "resnet18"  # frozen feature backbone: resnet18 | clip_vitb16 | vjepa_l
ENCODER = "meanpool"  # temporal encoder: meanpool | gru | tcn | transformer
HEAD = "linear"  # classifier head: linear | mlp
LOSS = "bce"  # bce | focal

# Hyperparameter axis.
LR = 0.003
EPOCHS = 8
BATCH_SIZE = 64
DROPOUT = 0.1
HIDDEN = 64
WEIGHT_DECAY = 0.0001

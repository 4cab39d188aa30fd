"""Knobs of recipe `__RECIPE_NAME__`: one `NAME = <python literal>` per line.

Agents (and the knob-space optimisers `random` and `bayes`) edit exactly these
lines; keep each assignment on its own line with a plain literal value. Every
knob is also declared in recipe.toml (`[[knobs]]`) with the values it may take.
"""

HIDDEN = 16  # width of the hidden layer
LR = 0.01  # Adam learning rate
EPOCHS = 200  # full-batch steps
WEIGHT_DECAY = 0.0001  # L2 penalty on the weights

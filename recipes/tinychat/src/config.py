"""Knobs of the tinychat recipe: one `NAME = <python literal>` per line.

Agents (and the knob-space optimisers) edit exactly these lines; keep each
assignment on its own line with a plain literal value.
"""

# Architecture (model.py).
N_LAYER = 2
N_HEAD = 4
N_EMBD = 64
MLP_RATIO = 4
BLOCK_SIZE = 64  # context the model is trained on; the evaluator gives it at most this many bytes

# Optimiser (optim.py).
LR = 0.003
WEIGHT_DECAY = 0.01
BETA2 = 0.99
GRAD_CLIP = 1.0

# Data (loader.py).
BATCH_SIZE = 32

# Schedule (schedule.py).
STEPS = 250
WARMUP_STEPS = 10
SCHEDULE = "cosine"  # cosine | linear | constant

# System (train.py).
THREADS = 1

"""Knobs of the tinygolf recipe: one `NAME = <python literal>` per line.

Agents (and the knob-space optimisers) edit exactly these lines; keep each
assignment on its own line with a plain literal value. Remember the cap:
these files' bytes count towards the artifact, with the compressed model.
"""

# Architecture (model.py).
N_LAYER = 2
N_EMBD = 64
N_HEAD = 4
MLP_RATIO = 2
TIE_EMBEDDINGS = True

# Tokens in (model.py): hashed byte-bigram embeddings added to the byte embeddings.
BIGRAM_BUCKETS = 0  # 0 = off

# Optimisation (train.py).
STEPS = 250
BATCH_SIZE = 32
BLOCK_SIZE = 64  # training context
LR = 0.004
BETA2 = 0.99

# Regularisation (train.py).
WEIGHT_DECAY = 0.01
DROPOUT = 0.0

# Loss (loss.py).
Z_LOSS = 0.0

# Quantization awareness (quant.py): fake-quantize weights for the last fraction of steps.
QAT_FRACTION = 0.0

# Evaluation (model.py): context the model asks the evaluator for (ALiBi extends past BLOCK_SIZE).
EVAL_CONTEXT = 64

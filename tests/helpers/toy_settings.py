"""The toy study shrunk to seconds per stage (scripts/toy_env.sh reads these): a 30-step toy model, a few
items per task, 8 new tokens, 2 fine-tuning steps. For tests that run the experiment scripts end to end."""

from __future__ import annotations

REDUCED_TOY = {
    "TOY_STEPS": "30",
    "ITEMS": "4",
    "N_ITEMS": "2",
    "CAL_ITEMS": "2",
    "SFT_LIMIT": "12",
    "PROBE_ITEMS": "8",
    "MAX_NEW_TOKENS": "8",
    "TRAIN_FLAGS": "--max_steps 2 --eval_steps 1 --save_steps 1 --num_train_epochs 1",
}

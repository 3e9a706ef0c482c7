"""Recovery fine-tuning of pruned models (QLoRA, LoRA, full)."""

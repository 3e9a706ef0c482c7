"""Self-generated responses (SGR) from the unpruned model."""

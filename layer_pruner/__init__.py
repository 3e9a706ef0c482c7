"""Layer pruning: choose decoder blocks to remove and materialize the pruned model."""

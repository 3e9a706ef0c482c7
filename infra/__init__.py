"""Code shared by every stage: files on disk, configs, model loading, prompts and generation backends.

Stages import from here and never from each other's internals.
"""

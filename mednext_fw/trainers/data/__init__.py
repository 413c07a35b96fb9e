"""Training data: memory-mapped cases, patch sampling, augmentation, multi-process loading."""

"""Fused mode: env batches, policy inference and learning in one jitted program per device (see `loop`)."""

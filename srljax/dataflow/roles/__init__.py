"""The workers of distributed mode (actor, policy, buffer, trainer, replay trainer) and the parts of a trainer."""

"""The distributed replay store: prioritized sampling (sum tree), n-step transitions, the sample-ratio gate."""

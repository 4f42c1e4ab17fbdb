"""Benchmarks: the protocols that turn a dataset into measured unlearning (fine-tune a target
and an oracle, unlearn, evaluate, attack)."""

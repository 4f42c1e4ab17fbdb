"""Shared helpers of the unlearning study: data, models, methods, training, metrics, reports."""

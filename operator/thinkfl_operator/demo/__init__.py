"""The demo: a small deterministic synthetic incident anyone can diagnose without a cluster."""

"""Diagnosis engines: one interface, incident context in, ranked diagnosis out."""

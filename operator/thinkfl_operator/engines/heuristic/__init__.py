"""The deterministic engine: baseline-versus-window shifts of span timings, walked with the tools."""

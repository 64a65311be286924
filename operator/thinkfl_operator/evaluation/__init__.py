"""Offline evaluation against the datasets' fault labels."""

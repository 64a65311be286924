"""The three ThinkFL tools over any store, with outputs in the exact training format."""

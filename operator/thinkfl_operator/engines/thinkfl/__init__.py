"""The ThinkFL engine: the trained prompt, the reply parser and the think/rethink/final loop."""

"""Configuration: the one settings object, its generated reference and the logging set-up."""

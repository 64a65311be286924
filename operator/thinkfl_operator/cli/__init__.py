"""The ``thinkfl`` command line."""

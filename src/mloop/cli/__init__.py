"""The ``mloop`` command line."""

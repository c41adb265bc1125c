"""Scenario generators and training examples used by ``mloop demo``."""

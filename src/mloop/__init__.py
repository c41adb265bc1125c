"""mloop: the whole machine-learning lifecycle as one closed loop."""

__version__ = "0.1.0"

"""One module per schema revision, named ``v<revision>_<slug>.py``."""

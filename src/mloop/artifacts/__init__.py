"""Content-addressed artifact storage over pluggable blob backends."""

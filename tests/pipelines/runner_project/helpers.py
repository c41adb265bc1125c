"""A helper the ``double`` step calls: changing it must re-run only ``double``."""


def scale(value: int) -> int:
    """Double a value."""
    return value * 2

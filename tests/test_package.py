"""The top-level package: a fast import, and mloop.data loaded on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mloop


def test_import_mloop_does_not_load_the_data_stack() -> None:
    code = (
        "import sys, mloop; "
        "assert 'mloop.data' not in sys.modules and 'pandas' not in sys.modules; "
        "assert callable(mloop.data.drift) and 'mloop.data' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = mloop.nope

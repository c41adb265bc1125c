"""The folders the data-versioning benchmark adds: generated from fixed seeds, same bytes every run.

Standard library only. Each file's bytes come from ``random.Random(seed)``, so they are
incompressible (no tool gains from compression) and identical between runs and machines.
"""

from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["FULL", "QUICK", "Tree", "change_one_file", "make_tree"]


@dataclass(frozen=True)
class Tree:
    """One generated folder: ``files`` files in ``folders`` subfolders, sizes drawn uniformly
    from [``min_size``, ``max_size``] bytes."""

    name: str
    files: int
    folders: int
    min_size: int
    max_size: int

    def describe(self) -> str:
        """A one-line description for the output."""
        return (
            f"{self.files:,} files in {self.folders} folders, "
            f"{_size(self.min_size)}-{_size(self.max_size)} each"
        )

    def as_dict(self) -> dict[str, Any]:
        """The tree's parameters, for the JSON result."""
        return asdict(self)


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n / 1024:.0f} KiB"


#: (a) 2,000 files of 0.5-1.5 MiB (about 2 GiB); (b) 50,000 files of 1-4 KiB.
FULL = (
    Tree("large", files=2_000, folders=20, min_size=1 << 19, max_size=3 << 19),
    Tree("small", files=50_000, folders=50, min_size=1024, max_size=4096),
)
QUICK = (
    Tree("large", files=40, folders=4, min_size=1 << 19, max_size=3 << 19),
    Tree("small", files=2_000, folders=10, min_size=1024, max_size=4096),
)


def _file_path(root: Path, tree: Tree, index: int) -> Path:
    return root / f"part-{index % tree.folders:03d}" / f"file-{index:06d}.bin"


def make_tree(root: Path, tree: Tree, *, seed: int = 20261123) -> int:
    """Write the tree under ``root`` (which must not exist); return the total size in bytes."""
    sizes = random.Random(seed).choices(range(tree.min_size, tree.max_size + 1), k=tree.files)
    for folder in range(tree.folders):
        (root / f"part-{folder:03d}").mkdir(parents=True)
    total = 0
    for index, size in enumerate(sizes):
        data = random.Random(seed * 1_000_003 + index).randbytes(size)
        _file_path(root, tree, index).write_bytes(data)
        total += size
    return total


def change_one_file(root: Path, tree: Tree) -> Path:
    """Overwrite one file in the middle of the tree with new bytes of the same size."""
    path = _file_path(root, tree, tree.files // 2)
    size = path.stat().st_size
    path.write_bytes(random.Random(-1).randbytes(size))
    # A distinct modification time even on file systems with coarse timestamps.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    return path

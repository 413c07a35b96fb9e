"""``--num-parts N --part-id K``: a deterministic split of the cases so N processes (or machines) sharing
one output folder predict disjoint parts that together cover every case exactly once.

Cases are ordered by name and dealt round-robin (case i goes to part i mod N), which spreads big and
small cases evenly when names carry no size order, and depends on nothing but the names.
"""
from __future__ import annotations

from typing import Sequence, TypeVar

T = TypeVar("T")


def check_part(num_parts: int, part_id: int) -> None:
    if num_parts < 1:
        raise ValueError(f"--num-parts must be >= 1, got {num_parts}")
    if not 0 <= part_id < num_parts:
        raise ValueError(f"--part-id must be in [0, {num_parts - 1}] for --num-parts {num_parts}, got {part_id}")


def select_part(names: Sequence[T], num_parts: int, part_id: int) -> list[T]:
    """The names of part ``part_id`` (0-based) of ``num_parts``."""
    check_part(num_parts, part_id)
    return sorted(names)[part_id::num_parts]

"""Generator of the demo set: ``python -m judgealign.demo.generator --out DIR``.

Re-exports the mutation API (:mod:`judgealign.demo.mutations`) so that
``from judgealign.demo.generator import generate_variants`` works as documented.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from judgealign.demo.mutations import (
    MUTATIONS,
    DemoNotebook,
    Mutation,
    compatible,
    generate_variants,
    mutate,
)

__all__ = [
    "MUTATIONS",
    "DemoNotebook",
    "Mutation",
    "compatible",
    "generate_variants",
    "main",
    "mutate",
]


def main(argv: Sequence[str] | None = None) -> None:
    """Write the demo set (notebooks, labels.jsonl, manifest.json) to ``--out``."""
    from judgealign.demo.dataset import write_demo_set

    parser = argparse.ArgumentParser(prog="python -m judgealign.demo.generator")
    parser.add_argument("--out", type=Path, required=True, help="folder for the demo set")
    args = parser.parse_args(argv)
    write_demo_set(args.out)
    print(f"wrote the demo set to {args.out}")


if __name__ == "__main__":
    main()

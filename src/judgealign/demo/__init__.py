"""Demo data: small ML notebooks with planted flaws and expert labels, and their generator.

>>> from judgealign.demo import load_demo
>>> items, labels = load_demo(dimensions=["data_imputation"])
>>> sorted({lb.score for lb in labels})
[0.0, 1.0, 2.0, 3.0]
"""

from judgealign.demo.dataset import (
    DEMO_RECIPES,
    demo_judge_path,
    demo_labels_path,
    demo_manifest_path,
    demo_notebooks_dir,
    demo_set,
    load_demo,
    load_demo_judge,
    write_demo_set,
)
from judgealign.demo.mutations import (
    MUTATIONS,
    DemoNotebook,
    Mutation,
    compatible,
    generate_variants,
    mutate,
)

__all__ = [
    "DEMO_RECIPES",
    "MUTATIONS",
    "DemoNotebook",
    "Mutation",
    "compatible",
    "demo_judge_path",
    "demo_labels_path",
    "demo_manifest_path",
    "demo_notebooks_dir",
    "demo_set",
    "generate_variants",
    "load_demo",
    "load_demo_judge",
    "mutate",
    "write_demo_set",
]

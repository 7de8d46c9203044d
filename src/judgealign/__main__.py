"""``python -m judgealign``: the ``judgealign`` command, from any interpreter with the package."""

from __future__ import annotations

if __name__ == "__main__":
    from judgealign.cli.main import app

    app(prog_name="judgealign")

"""``Report``: the evaluation report a user holds, its data plus the ways to look at it.

The data model (``report.model``) stays pure so that the renderers can import it; the views
live in this subclass, which imports the renderers, so neither module imports the other back.
"""

from __future__ import annotations

import io
from pathlib import Path

from judgealign.report.model import EvaluationReport


class Report(EvaluationReport):
    """An ``EvaluationReport`` with ``summary``, ``to_html`` and ``log_mlflow``.

    >>> Report.load(Path("runs/demo/report.json")).summary()  # doctest: +SKIP
    """

    def summary(self, width: int = 120) -> str:
        """The console table as plain text: per dimension and variant the MAE with its CI,
        the paired test against the baseline, and the reference lines (median predictor,
        calibrated baseline, human-human).

        >>> print(report.summary())  # doctest: +SKIP
        """
        from rich.console import Console

        from judgealign.report.console import render_console

        console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
        render_console(self, console)
        return console.export_text()

    def to_html(self, path: str | Path | None = None) -> str:
        """The self-contained HTML report; also written to ``path`` when given.

        >>> html = report.to_html("report.html")  # doctest: +SKIP
        """
        from judgealign.report.html import render_html, write_html

        if path is not None:
            write_html(self, Path(path))
        return render_html(self)

    def log_mlflow(
        self,
        run_dir: str | Path = "runs/judgealign",
        *,
        tracking_uri: str | None = None,
        experiment: str | None = None,
    ) -> str:
        """Log this report as an MLflow run (needs ``judgealign[mlflow]``); returns the run
        id. The store is ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else an SQLite store
        in ``run_dir``; logging the same report again updates its run.

        >>> run_id = report.log_mlflow("runs/first")  # doctest: +SKIP
        """
        from judgealign.report.mlflow_log import log_to_mlflow

        return log_to_mlflow(self, Path(run_dir), tracking_uri=tracking_uri, experiment=experiment)

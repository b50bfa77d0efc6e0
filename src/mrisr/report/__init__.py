"""Reports a person can look at: per-case comparison figures and one self-contained ``report.html``.

``mrisr evaluate ... --report --out DIR`` passes a :class:`~mrisr.report.figures.ReportCollector` as the
``on_case`` callback of the evaluation (figures drawn while each case's volumes are in memory), then
writes ``DIR/report.html`` with :func:`~mrisr.report.html.write_report`.
"""

from mrisr.report.figures import CaseEntry, FigureInfo, ReportCollector, case_figure, display_orientation
from mrisr.report.html import model_metadata, provenance, render_report, write_report

__all__ = ["CaseEntry", "FigureInfo", "ReportCollector", "case_figure", "display_orientation", "model_metadata",
           "provenance", "render_report", "write_report"]

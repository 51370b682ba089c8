"""Reports: figures of gradient flow and training (`figures.py`), one self-contained HTML page
(`html.py`)."""

from vanishing.report.figures import (
    plot_heatmaps,
    plot_lag_profiles,
    plot_learning_curves,
    plot_lstm_terms,
    save_figure,
)
from vanishing.report.html import Section, write_report

__all__ = [
    "Section",
    "plot_heatmaps",
    "plot_lag_profiles",
    "plot_learning_curves",
    "plot_lstm_terms",
    "save_figure",
    "write_report",
]

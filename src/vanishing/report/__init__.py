"""Reports: figures of gradient flow and training (`figures.py`), one self-contained HTML page
(`html.py`), a text shaded token by token (`tokens.py`)."""

from vanishing.report.figures import (
    plot_heatmaps,
    plot_lag_profiles,
    plot_learning_curves,
    plot_lstm_terms,
    plot_token_gradients,
    save_figure,
)
from vanishing.report.html import Section, write_report
from vanishing.report.tokens import TOKEN_STYLE, shade, shaded_tokens

__all__ = [
    "TOKEN_STYLE",
    "Section",
    "plot_heatmaps",
    "plot_lag_profiles",
    "plot_learning_curves",
    "plot_lstm_terms",
    "plot_token_gradients",
    "save_figure",
    "shade",
    "shaded_tokens",
    "write_report",
]

"""Experiments built from the library: `demo.py` (three models learn the adding problem,
gradient flow measured as they train) with its report (`demo_report.py`), and `untrained.py`
(one untrained model's gradient flow)."""

"""Applications: the recurrent layers on real data, beside the methods a practitioner would use.

`timeseries/` forecasts and classifies time series, `text/` classifies text (data that ships
inside PyPI or Debian packages, the user's own files, the baselines, one evaluation protocol
each). Nothing here is imported by `import vanishing`; the extra dependencies install with
`pip install vanishing[timeseries]` or `vanishing[text]`.
"""

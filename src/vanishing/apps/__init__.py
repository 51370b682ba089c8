"""Applications: the recurrent layers on real data, beside the methods a practitioner would use.

`timeseries/` forecasts and classifies time series (data that ships inside PyPI packages, the
user's own files, the baselines, one evaluation protocol). Nothing here is imported by
`import vanishing`; its extra dependencies install with `pip install vanishing[timeseries]`.
"""

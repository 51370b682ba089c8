"""Applications of the layers: time series (timeseries/) and text (text/)."""

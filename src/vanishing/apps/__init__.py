"""Applications: the recurrent layers on real data, beside the methods a practitioner would use.

`timeseries/` forecasts and classifies time series, `text/` classifies text (data that ships
inside PyPI or Debian packages, the user's own files, the baselines, one evaluation protocol
each). What both share: `network.py` (encoder -> vanishing.LSTM / RNN -> a Linear head at each
sequence's own last step), `estimator.py` (the scikit-learn estimators around it, trained by
`train.fit`; a subclass supplies the input conversion) and `model_file.py` (a fitted model
on disk: JSON config + safetensors weights). Nothing here is imported by `import vanishing`;
the extra dependencies install with `pip install vanishing[timeseries]` or `vanishing[text]`.
"""

"""Checking the scoring against what really happened: the predictive model, back-tests, channel quality.

- ``models``: the records, :class:`PredictiveModel` and :class:`BacktestJob` (scoring's app and tables).
- ``features``, ``training``, ``prediction``, ``runs``: the predictive model — point-in-time
  features, training with its held-out metrics, applying the active model, and a training run's life.
- ``backtest``: replay a candidate rule set and settings beside the current ones over the history.
- ``channel_quality``: which channels, sources and forms bring MQLs that sales accepts and that close.
- ``api``, ``urls`` (``/api/v1/``), ``views``, ``page_urls`` (the "Scoring insights" page),
  ``tasks`` (the ``bulk`` queue), ``demo`` (a year of demo history).

This module imports nothing: ``scoring/models.py`` imports ``scoring.predictive.models`` while the
app registry is loading, so the package itself must stay free of anything that needs the models.
"""

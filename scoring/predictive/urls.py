"""Routes of predictive scoring, back-tests and channel quality (mounted under /api/v1/)."""

from django.urls import path

from . import api

urlpatterns = [
    path("scoring/predictive/", api.PredictiveStatusView.as_view(), name="predictive-status"),
    path("scoring/predictive/train/", api.PredictiveTrainView.as_view(), name="predictive-train"),
    path("leads/<int:pk>/prediction/", api.LeadPredictionView.as_view(), name="lead-prediction"),
    path("scoring/backtest/", api.BacktestCreateView.as_view(), name="backtest-create"),
    path("scoring/backtest/<int:pk>/", api.BacktestDetailView.as_view(), name="backtest-detail"),
    path("scoring/backtest/<int:pk>/apply/", api.BacktestApplyView.as_view(), name="backtest-apply"),
    path("scoring/channel-quality/", api.ChannelQualityView.as_view(), name="channel-quality"),
]

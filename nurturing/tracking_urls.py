from django.urls import path

from . import tracking_views as tracking

# Mounted at /t/ by leadfunnel/urls.py.
urlpatterns = [
    path("o/<str:token>/", tracking.open_pixel, name="tracking-open"),
    path("c/<str:token>/", tracking.click, name="tracking-click"),
    path("u/<str:token>/", tracking.unsubscribe, name="tracking-unsubscribe"),
]

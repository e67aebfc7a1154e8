from django.urls import path

from killswitch.api.views import KillSwitchActivateApi, KillSwitchDeactivateApi, KillSwitchStatusApi

app_name = "killswitch-api"

urlpatterns = [
    path("", KillSwitchStatusApi.as_view(), name="status"),
    path("activate/", KillSwitchActivateApi.as_view(), name="activate"),
    path("deactivate/", KillSwitchDeactivateApi.as_view(), name="deactivate"),
]

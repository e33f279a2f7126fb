"""The accounts' addresses: the login and logout pages, the two-factor page and the API token."""

from django.contrib.auth import views as auth_views
from django.urls import path

from medloop.accounts import token_views, two_factor_views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/two-factor/", two_factor_views.two_factor_page, name="two-factor"),
    path("api/auth/token/", token_views.TokenView.as_view(), name="api-token"),
]

"""Roles are Django groups (``marketer``, ``sales``); an admin is a superuser."""

import functools
from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.permissions import BasePermission

MARKETER = "marketer"
SALES = "sales"
ROLE_GROUPS = (MARKETER, SALES)


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The role names of a user, cached on the instance for the request."""
    if not user or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_leadfunnel_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            names.add("admin")
        cached = frozenset(names)
        user._leadfunnel_roles = cached
    return cached


def is_admin(user) -> bool:
    return bool(user and user.is_authenticated and user.is_superuser)


def is_marketer(user) -> bool:
    return is_admin(user) or MARKETER in user_roles(user)


def is_sales(user) -> bool:
    return is_admin(user) or SALES in user_roles(user)


def role_required(*, marketer: bool = False, sales: bool = False) -> Callable:
    """Dashboard pages: anonymous → login page; logged in without one of the roles → the 403 page."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            allowed = (marketer and is_marketer(request.user)) or (sales and is_sales(request.user))
            if not allowed:
                raise PermissionDenied("This page is for " + (" and ".join(_role_names(marketer, sales))) + ".")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def admin_required(view: Callable) -> Callable:
    """Dashboard pages for admins only: anonymous → login page; anyone else → the 403 page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_admin(request.user):
            raise PermissionDenied("This page is for admins.")
        return view(request, *args, **kwargs)

    return wrapper


def _role_names(marketer: bool, sales: bool) -> list[str]:
    return [name for name, on in (("marketers", marketer), ("sales reps", sales)) if on]


class IsMarketer(BasePermission):
    message = "Only marketers and admins may do this."

    def has_permission(self, request, view) -> bool:
        return is_marketer(request.user)


class IsSalesRep(BasePermission):
    message = "Only sales reps and admins may do this."

    def has_permission(self, request, view) -> bool:
        return is_sales(request.user)


class IsAdmin(BasePermission):
    message = "Only admins may do this."

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)


class IsMarketerOrSales(BasePermission):
    """Reading leads: marketers, sales reps and admins."""

    message = "Only marketers, sales reps and admins may do this."

    def has_permission(self, request, view) -> bool:
        return is_marketer(request.user) or is_sales(request.user)

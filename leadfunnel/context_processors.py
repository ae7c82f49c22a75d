from .roles import is_admin, is_marketer, is_sales


def roles(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"role_marketer": False, "role_sales": False, "role_admin": False}
    return {"role_marketer": is_marketer(user), "role_sales": is_sales(user), "role_admin": is_admin(user)}

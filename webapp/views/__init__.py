"""HTML blueprints, one module per area of the console."""

from flask import Flask


def register_views(app: Flask) -> None:
    from webapp.views import (
        account,
        api_keys,
        audit,
        auth,
        budgets,
        experiments,
        features,
        models,
        overview,
        prompts,
        providers,
        request_log,
        spending,
        users,
    )

    areas = (
        auth,
        overview,
        features,
        models,
        providers,
        prompts,
        spending,
        request_log,
        budgets,
        experiments,
        api_keys,
        audit,
        users,
        account,
    )
    for module in areas:
        app.register_blueprint(module.bp)

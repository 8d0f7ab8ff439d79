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
        budgets,
        experiments,
        api_keys,
        audit,
        users,
        account,
    )
    for module in areas:
        app.register_blueprint(module.bp)

"""HTML blueprints, one module per area of the console."""

from flask import Flask


def register_views(app: Flask) -> None:
    from webapp.views import (
        audit,
        auth,
        budgets,
        catalog,
        experiments,
        overview,
        prompts,
        spending,
    )

    for module in (
        auth,
        overview,
        catalog,
        prompts,
        spending,
        budgets,
        experiments,
        audit,
    ):
        app.register_blueprint(module.bp)

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
        users,
    )

    areas = (auth, overview, catalog, prompts, spending, budgets, experiments, audit, users)
    for module in areas:
        app.register_blueprint(module.bp)

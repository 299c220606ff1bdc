"""The HTTP API: a thin layer over the engine's service functions."""


def init_app(app):
    from api import errors, health

    errors.init_app(app)
    app.register_blueprint(health.bp)

"""HTTP layer: routes, middlewares, dependencies and error handlers; everything else goes through the service."""

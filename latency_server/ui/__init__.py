"""The dashboard: HTML pages over the service and the store, charts drawn on the server as SVG."""

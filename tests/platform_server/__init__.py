"""A loopback host platform written from docs/platforms.md, docs/platform-api.yaml and docs/webhooks.md alone.

``app`` is the WSGI application, ``runner`` starts it under gunicorn as its own process, ``fixtures`` holds the
``loopback_platform`` pytest fixture and ``test_platform_server`` checks the server itself against the docs.
"""

"""What an operator sees of a running instance: the request id that ties log lines, tasks and audit events
together (``request_id``) and the counters of events as they happen (``events``).

Just above the models in ``moderation``'s layers (it imports nothing else of the project), so the audit log,
the services and the entry points can all use it. The gauges read from the database at scrape time are
``moderation/services/metrics.py``'s; ``/metrics`` is ``moderation/views/metrics.py``.
"""

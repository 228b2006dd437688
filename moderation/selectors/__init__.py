"""Reads for the screens. Views, the API and services call these, never ``.get()``; one module per screen:

- ``queue``: the moderation queue (filters, pages in queue order, counts per state).
- ``case``: the case page (evidence, history, near-duplicates, withheld media, display preferences).
- ``audit``: the audit log viewer (filters, events).
- ``reporter``: what a reporter sees (report lookup by case number and PIN, public status).

Selectors read models; they never import ``moderation.services``.
"""

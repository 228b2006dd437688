"""HMA-compatible API: Meta's Hasher-Matcher-Actioner routes over Takedown's banks, matcher and audit.

A platform wired to HMA (OpenMediaMatch) switches by changing its base URL to ``https://<takedown>/hma``
(``TAKEDOWN_HMA_PREFIX``) and sending a platform key. Plain Django views, no DRF: the lookups are the hot
path. What maps onto what, and what differs from HMA, is in docs/hma.md.

- ``views``: hashing, matching and status routes (``/h/...``, ``/m/...``, ``/status``);
- ``curation``: banks and contents (``/c/...``), through ``moderation.services.hma``;
- ``lookup``: the match reads over the in-memory index, in plain SQL;
- ``media``: hashing an upload or a fetched URL into HMA's signal types;
- ``auth``: platform keys, the curation scope and the network allow-list;
- ``responses``: HMA's answer shapes (``{"message"}`` errors, 422 validation lists) and its parameter rules.
"""

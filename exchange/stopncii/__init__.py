"""StopNCII.org: hashes people make of their intimate images on their own device, which partner platforms
(CSPs) fetch, block matching uploads of, and report back on. One module per concern; import from them:

- ``records``: the record format (``HashRecord``, ``CSPFeedback``, the enums), reading and checking records,
  and writing our bank entries as records.
- ``client``: the HTTP client for StopNCII's partner API (``StopNCIIClient``, ``FetchPage``).
- ``errors``: ``StopNCIIError`` and its subclasses, whose messages say what to do.
- ``store``: the jobs' checkpoint file (``StateFile``).
- ``jobs``: fetch, submit and feedback jobs, ``records_apply`` and ``stopncii_bank``.
"""

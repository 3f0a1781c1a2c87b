"""Data-subject rights and retention (R1-R3, C3): erasure, access, retention.

* :mod:`~pipelines.rights.erasure`: ``audience forget`` and the daily erasure stage. The person is deleted from
  every table (the :data:`~pipelines.rights.erasure.ERASURE_MAP` says how each table identifies a person),
  then physically purged (deletion vectors, old files, old log entries); a keyed-hash tombstone keeps them
  out of every later ingestion.
* :mod:`~pipelines.rights.access`: ``audience access``, one JSON document of everything held on a person.
* :mod:`~pipelines.rights.retention`: the daily retention stage (traffic 12 months, Ads & Data 13 months,
  customer records 10 years after the contract, quarantine briefly).
* :mod:`~pipelines.rights.cli`: the two commands, wired into ``audience`` by :mod:`pipelines.cli`.
"""

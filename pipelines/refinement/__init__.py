"""Advertiser list refinement (L1, L2) and campaign delivery reports.

* :mod:`.match_keys` -- daily stage: SHA-256 keys of refinement-eligible customers (``silver/match_keys``).
* :mod:`.refine` -- ``audience refine``: validate, match, refine, guard, record (``gold/advertiser_reports``,
  ``gold/activation_lists``, ``ops/refinement_audit``); daily stage refreshing activation lists (C3).
* :mod:`.campaign_reports` -- daily stage: thresholded reach and impressions per campaign and day.
* :mod:`.cli` -- the thin command wrapper.
"""

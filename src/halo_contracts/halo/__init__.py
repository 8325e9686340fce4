"""The Halo API boundary: client, auth, pacing, paging and wire mapping.

Nothing outside this package sees a raw Halo dict. Import the client from
``halo_contracts.halo.client`` and the errors from ``halo_contracts.halo.errors``.
"""

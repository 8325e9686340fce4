"""Shared test helpers (importable as ``support``: pytest puts ``tests/`` on sys.path).

* ``support.spec``: ``SpecCheckingTransport`` checks every request against Halo's OpenAPI slice.
* ``support.fakehalo``: ``FakeHalo``, a small in-memory Halo behind ``httpx2.MockTransport``.
"""

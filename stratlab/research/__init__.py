"""The research cycle's steps as plain async functions over the store and the providers.

Temporal activities (``activities/``) are thin wrappers around these, so every step can be
run and tested without a worker.
"""

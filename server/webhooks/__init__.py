"""Webhooks: events about documents POSTed to the operator's URLs, at least once.

Events are written to the store's outbox in the transaction of the change they describe
(:mod:`server.storage.events`); :mod:`.changes` turns noted edits into ``document.changed``
once editing pauses; :mod:`.delivery` posts what is due, signed, and retries with backoff.
"""

"""Several Tandem instances on one PostgreSQL store, joined by Redis for fan-out."""

from __future__ import annotations


class ClusterError(RuntimeError):
    """Redis could not be reached or used at start (a one-line reason)."""


__all__ = ["ClusterError"]

"""Typed keys for what the application holds (aiohttp ``web.AppKey``)."""

from __future__ import annotations

from aiohttp import web

from .auth import Authorizer
from .cluster.node import Cluster
from .config import Settings
from .documents import Documents
from .limits import ConnectionCounter
from .rooms import Rooms
from .storage import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
ROOMS = web.AppKey("rooms", Rooms)
DOCUMENTS = web.AppKey("documents", Documents)
AUTH = web.AppKey("auth", Authorizer)
CONNECTIONS = web.AppKey("connections", ConnectionCounter)
# Only when the instance is part of a cluster (--redis).
CLUSTER = web.AppKey("cluster", Cluster)

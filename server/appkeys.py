"""Typed keys for what the application holds (aiohttp ``web.AppKey``)."""

from __future__ import annotations

from aiohttp import web

from .config import Settings
from .rooms import Rooms
from .store import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
ROOMS = web.AppKey("rooms", Rooms)

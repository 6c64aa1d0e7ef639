"""The settings and the metadata store that API objects work with."""
from __future__ import annotations

from dataclasses import dataclass

from .config import Settings, load_settings
from .db import MetadataStore, open_store


@dataclass(frozen=True)
class Context:
    settings: Settings
    store: MetadataStore

    @property
    def cache_dir(self) -> str:
        return str(self.settings.cache_dir)


def default_context() -> Context:
    """Read config and environment now, so a changed AUTOLOG_HOME or AUTOLOG_DB_URL takes effect."""
    settings = load_settings()
    return Context(settings=settings, store=open_store(settings.db_url))

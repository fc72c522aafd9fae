"""Shared pytest fixtures."""

import json

import pytest


@pytest.fixture
def write_dump(tmp_path):
    """write_dump writes a dump dict (or raw text) into tmp_path and returns its path."""

    def write(doc, name="dump.json"):
        p = tmp_path / name
        p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return p

    return write


@pytest.fixture(autouse=True)
def private_heap_cache(tmp_path_factory, monkeypatch):
    """private_heap_cache gives every test (and the CLI processes it runs) an empty heap cache of its own."""
    monkeypatch.setenv("GCTRACE_CACHE_DIR", str(tmp_path_factory.mktemp("heapcache")))

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

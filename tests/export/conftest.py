"""Export tests run torch on one thread (`tests.conftest.one_thread`)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _export_one_thread(one_thread):
    yield

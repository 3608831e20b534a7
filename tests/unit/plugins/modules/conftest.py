# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Fixtures of the module tests: the fake Nova (fake_nova.py)."""

from __future__ import annotations

from ansible_collections.nova.cells.tests.unit.plugins.modules.fake_nova import nova, run_module  # noqa: F401

"""Fixtures shared by the integration tests."""

import pytest


@pytest.fixture
def extra_settings(request):
    """Settings a test adds through `@pytest.mark.parametrize(..., indirect=True)`."""
    return getattr(request, "param", {})

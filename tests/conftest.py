"""Shared fixtures. Tiny variants keep real builds and conversions fast."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A real EfficientNet (swish, SE, every stage) small enough to build and convert in seconds.
TINY_SPEC = "phi=0,width=0.25,depth=0.25,resolution=64"
TINY_LITE_SPEC = "phi=0,width=0.25,depth=0.25,resolution=64,base=lite"


@pytest.fixture(scope="session")
def tiny_variant():
    from edgenet.variants import parse_variant

    return parse_variant(TINY_SPEC)


@pytest.fixture(scope="session")
def tiny_lite_variant():
    from edgenet.variants import parse_variant

    return parse_variant(TINY_LITE_SPEC)

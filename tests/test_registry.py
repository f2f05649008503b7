"""The weights registry and --weights imagenet resolution, against a local HTTP server.

Real files travel over real HTTP on 127.0.0.1: the ImageNet Lite0 checkpoint from its
package and a Keras weights file made here. Nothing touches the internet.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from weights_server import WeightsServer, closed_port

from edgenet.family.variants import LITE_NAMES, VARIANTS
from edgenet.weights.fetch import FetchSettings, WeightsHashError, WeightsUnavailableError, resolve, verify
from edgenet.weights.registry import (
    REGISTRY,
    NoPublishedWeightsError,
    PublishedWeights,
    cache_dir,
    checkpoint_bn_eps,
    published_weights,
)


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _settings(tmp_path, server_url: str | None, **env) -> FetchSettings:
    environ = {"EDGENET_CACHE": str(tmp_path / "cache"), "EDGENET_IGNORE_PACKAGES": "1", **env}
    if server_url:
        environ["EDGENET_WEIGHTS_URL"] = server_url
    return FetchSettings.from_env(environ)


def _entry(filename: str, sha256: str | None, fmt="pytorch", variant="lite0") -> PublishedWeights:
    return PublishedWeights(variant=variant, source="test server", filename=filename, file_format=fmt,
                            licence="Apache-2.0", hash=f"sha256:{sha256}" if sha256 else None, hash_source="test",
                            size_bytes=None)


# --- the table ------------------------------------------------------------------------------


def test_registry_covers_every_published_variant():
    published = [n for n, v in VARIANTS.items() if v.family in ("efficientnet", "lite")]
    assert sorted(REGISTRY) == sorted(published)
    for name, entry in REGISTRY.items():
        assert entry.variant == name
        assert entry.top1_published == VARIANTS[name].published.top1
        assert entry.resolution_px == VARIANTS[name].resolution
        assert entry.licence == "Apache-2.0"
        assert entry.hash is None or entry.hash.split(":")[0] in ("md5", "sha256")
        assert entry.source_url({}) or entry.package is not None
    assert REGISTRY["b0"].top1_published == 77.1 and REGISTRY["lite0"].top1_published == 75.1


def test_keras_hashes_are_the_ones_keras_pins():
    """The B0-B7 MD5 sums equal keras.applications' own (files with the classifier)."""
    from keras.src.applications import efficientnet

    for i in range(8):
        entry = REGISTRY[f"b{i}"]
        assert entry.hash == f"md5:{efficientnet.WEIGHTS_HASHES[f'b{i}'][0]}"
        assert entry.source_url({}) == f"{efficientnet.BASE_WEIGHTS_PATH}efficientnetb{i}.h5"


def test_lite_package_copies_match_their_published_hash_and_size():
    for name in LITE_NAMES[:3]:
        entry = REGISTRY[name]
        path = entry.package.locate()
        assert path is not None, f"{entry.package.install_hint} (dev extra)"
        assert entry.hash == f"sha256:{_sha256(path)}"
        assert entry.size_bytes == path.stat().st_size
        located = resolve(name, FetchSettings.from_env({"EDGENET_CACHE": "/nonexistent-edgenet-cache"}))
        assert located.origin == "package" and located.path == path


def test_lite3_lite4_come_from_the_hub_without_a_published_hash():
    entry = REGISTRY["lite4"]
    assert entry.hash is None and entry.bn_eps == 1e-3
    assert entry.source_url({}) == "https://huggingface.co/timm/tf_efficientnet_lite4.in1k/resolve/main/model.safetensors"
    assert entry.source_url({"HF_ENDPOINT": "http://127.0.0.1:9"}).startswith("http://127.0.0.1:9/timm/")
    assert entry.source_url({"EDGENET_WEIGHTS_URL": "http://m/w/"}) == "http://m/w/tf_efficientnet_lite4.in1k.safetensors"
    # The checkpoint mapper learns the training epsilon of a registry file from its name.
    assert checkpoint_bn_eps(Path("cache") / entry.filename) == 1e-3
    assert checkpoint_bn_eps("efficientnet-lite0-57934424.pth") is None and checkpoint_bn_eps("mine.pth") is None


def test_custom_variants_have_no_published_weights(tiny_variant):
    with pytest.raises(NoPublishedWeightsError, match="pass a weights file"):
        published_weights(tiny_variant)


def test_cache_dir_follows_xdg_and_edgenet_cache(tmp_path):
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "edgenet"
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path), "EDGENET_CACHE": str(tmp_path / "x")}) == tmp_path / "x"
    assert cache_dir({"HOME": "/h"}).name == "edgenet"


# --- downloads ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """A small Keras weights file (a tiny EfficientNet, random but seeded weights)."""
    from conftest import TINY_SPEC

    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant
    from edgenet.weights.keras_files import save_weights

    folder = tmp_path_factory.mktemp("served")
    model = build_model(parse_variant(TINY_SPEC))
    path = save_weights(model, folder / "tiny.weights.h5")
    return path, [w.numpy() for w in model.weights]


def test_fetch_then_cache_hit_with_the_server_gone(tmp_path, keras_file):
    from conftest import TINY_SPEC

    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant
    from edgenet.weights.keras_files import load_weights

    path, weights = keras_file
    entry = _entry(path.name, _sha256(path), fmt="keras-h5", variant="tiny")
    with WeightsServer(path.parent) as server:
        settings = _settings(tmp_path, server.url)
        located = resolve("tiny", settings, entry=entry, progress=False)
        assert located.origin == "download" and server.requests == [(path.name, None)]
    assert located.path == tmp_path / "cache" / "weights" / path.name
    assert _sha256(located.path) == _sha256(path)
    assert not list(located.path.parent.glob("*.part")) and not list(located.path.parent.glob("tmp*"))

    again = resolve("tiny", settings, entry=entry)  # the server is stopped: no network needed
    assert again.origin == "cache" and again.path == located.path
    model = build_model(parse_variant(TINY_SPEC))
    load_weights(model, parse_variant(TINY_SPEC), again.path)
    for got, want in zip(model.weights, weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)


def test_hash_mismatch_is_refused_and_nothing_is_cached(tmp_path, keras_file):
    path, _ = keras_file
    entry = _entry(path.name, "0" * 64, fmt="keras-h5", variant="tiny")
    with WeightsServer(path.parent) as server:
        with pytest.raises(WeightsHashError) as info:
            resolve("tiny", _settings(tmp_path, server.url), entry=entry, progress=False)
    message = str(info.value)
    assert "\n" not in message and "does not match sha256:000" in message and "deleted, nothing was cached" in message
    assert f"got {_sha256(path)}" in message
    leftovers = [p.name for p in (tmp_path / "cache" / "weights").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_interrupted_download_resumes_with_a_range_request(tmp_path, lite0_checkpoint):
    name = Path(lite0_checkpoint).name
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(lite0_checkpoint, served / name)
    entry = replace(REGISTRY["lite0"], package=None)
    said = []
    with WeightsServer(served, drop_once=(name,)) as server:
        located = resolve("lite0", _settings(tmp_path, server.url), entry=entry, progress=False, log=said.append)
    size = Path(lite0_checkpoint).stat().st_size
    assert [r[0] for r in server.requests] == [name, name]
    assert server.requests[0][1] is None
    offset = int(server.requests[1][1].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset < size  # the second request asked only for the missing bytes
    assert any("interrupted" in s and "resuming" in s for s in said)
    assert located.origin == "download" and _sha256(located.path) == _sha256(lite0_checkpoint)


def test_404_and_connection_refused_are_one_line_each(tmp_path, keras_file):
    path, _ = keras_file
    entry = _entry("missing.weights.h5", _sha256(path), fmt="keras-h5", variant="tiny")
    with WeightsServer(path.parent) as server:
        with pytest.raises(WeightsUnavailableError) as info:
            resolve("tiny", _settings(tmp_path, server.url), entry=entry, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{server.url}/missing.weights.h5: HTTP 404")
    assert str(tmp_path / "cache" / "weights" / "missing.weights.h5") in message

    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(WeightsUnavailableError) as info:
        resolve("tiny", _settings(tmp_path, url), entry=entry, progress=False)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{url}/missing.weights.h5: connection refused")


def test_offline_missing_file_names_the_url_and_the_place(tmp_path, keras_file):
    path, _ = keras_file
    entry = _entry(path.name, _sha256(path), fmt="keras-h5", variant="tiny")
    with WeightsServer(path.parent) as server:
        with pytest.raises(WeightsUnavailableError) as info:
            resolve("tiny", _settings(tmp_path, server.url, EDGENET_OFFLINE="1"), entry=entry)
        assert server.requests == []
    message = str(info.value)
    assert "offline" in message and f"{server.url}/{path.name}" in message
    assert f"place the file by hand at {tmp_path / 'cache' / 'weights' / path.name}" in message


def test_trust_on_first_use_pins_the_hash(tmp_path, keras_file):
    path, _ = keras_file
    entry = _entry(path.name, None, fmt="keras-h5", variant="tiny")
    with WeightsServer(path.parent) as server:
        settings = _settings(tmp_path, server.url)
        with pytest.raises(WeightsUnavailableError, match="no published hash.*--trust-on-first-use"):
            resolve("tiny", settings, entry=entry)
        assert server.requests == []  # refused before any transfer
        said = []
        located = resolve("tiny", settings, entry=entry, trust_on_first_use=True, progress=False, log=said.append)
    pin = located.path.with_name(located.path.name + ".sha256")
    assert pin.read_text().split()[0] == _sha256(path)
    assert any("pinned sha256" in s for s in said)
    assert resolve("tiny", settings, entry=entry).origin == "cache"

    # A cached file that no longer matches its pinned hash is deleted, and said so.
    data = bytearray(located.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    located.path.write_bytes(bytes(data))
    (result,) = verify(entry, settings)
    assert result.status == "mismatch" and "deleted" in result.detail and not located.path.exists()

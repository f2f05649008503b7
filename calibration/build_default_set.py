#!/usr/bin/env python
"""Regenerate edgenet's embedded default calibration images from installed packages.

The default set is every distinct real photograph of an everyday scene or object that we found shipped inside a
package with an explicit licence allowing redistribution (public domain, CC0, CC BY 2.0, GPL-2+): scikit-image,
scikit-learn and matplotlib (PyPI, the dev extra) and Debian's ``mate-backgrounds`` (its ``nature`` photographs,
``apt-get install mate-backgrounds``). No ImageNet image (foolbox's samples are ImageNet photos: excluded). They
are re-encoded as JPEG (quality 85, shorter side at most 320 px) so the edgenet wheel stays small, and listed with
their source, credit, licence, split and sha256 in ``manifest.json``.

Usage (from the repository root, with the dev extra installed and mate-backgrounds from apt)::

    .venv/bin/python calibration/build_default_set.py [--out edgenet/data/calibration] [--mate-dir DIR]

No network access is needed: every file is read from the installed packages.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from PIL import Image

MAX_SHORT_SIDE_PX = 320
JPEG_QUALITY = 85
#: Where Debian's mate-backgrounds package installs its nature photographs.
MATE_NATURE_DIR = Path("/usr/share/backgrounds/mate/nature")
_MATE_CREDITS = {  # file -> copyright holders, from the package's debian/copyright (all GPL-2+)
    "Aqua.jpg": "Charles Barbin", "LadyBird.jpg": "Charles Barbin", "YellowFlower.jpg": "Charles Barbin",
    "Garden.jpg": "Charles Barbin", "Blinds.jpg": "Lennart Poettering, Andrea Cimitan",
    "Dune.jpg": "Marco Cogoni, Hylke Bons", "FreshFlower.jpg": "Jens Ansorg",
    "GreenMeadow.jpg": "Timothy Schellhase, Lapo Calamandrei", "RainDrops.jpg": "blackcombwhistler07",
    "Storm.jpg": "Sergey Nazarov", "TwoWings.jpg": "Charles Barbin, Hylke Bons", "Wood.jpg": "Jean-Francois Fortin Tam",
}
#: The mate-backgrounds photographs kept out of calibration (the rest calibrate).
_MATE_HOLDOUT = ("LadyBird.jpg", "Storm.jpg", "Wood.jpg", "YellowFlower.jpg")

# (output name, package, file inside the package's data folder, title, credit, licence, licence url, split)
# "holdout" images are never sampled for calibration: the conversion fidelity check
# compares the float and int8 models on them, so they must be unseen by the quantizer.
SOURCES = (
    ("astronaut.jpg", "scikit-image", "astronaut.png", "Astronaut Eileen Collins",
     "NASA (NASA Great Images database)", "Public domain", "https://flic.kr/p/r9qvLn", "calibration"),
    ("rocket.jpg", "scikit-image", "rocket.jpg", "Falcon 9 launch of DSCOVR",
     "SpaceX", "Public domain",
     "https://www.flickr.com/photos/spacexphotos/16511594820/", "calibration"),
    ("camera.jpg", "scikit-image", "camera.png", "Camera man (grayscale)",
     "Lav Varshney", "CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/", "calibration"),
    ("coins.jpg", "scikit-image", "coins.png", "Greek coins from Pompeii (grayscale)",
     "Brooklyn Museum Collection", "No known copyright restrictions (public domain)",
     "https://www.brooklynmuseum.org/opencollection/archives/image/51611", "calibration"),
    ("hubble_deep_field.jpg", "scikit-image", "hubble_deep_field.jpg", "Hubble eXtreme Deep Field",
     "NASA", "Public domain",
     "http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/", "calibration"),
    ("grass.jpg", "scikit-image", "grass.png", "Grass (grayscale)",
     "linolafett (DeviantArt)", "CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/", "calibration"),
    ("brick.jpg", "scikit-image", "brick.png", "Brick wall (grayscale)",
     "CC0Textures (Bricks25)", "CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/", "calibration"),
    ("china.jpg", "scikit-learn", "china.jpg", "China (temple roof)",
     "danielbuechele (Flickr), retrieved by Robert Layton", "CC BY 2.0",
     "https://creativecommons.org/licenses/by/2.0/", "calibration"),
    ("chelsea.jpg", "scikit-image", "chelsea.png", "Chelsea the cat",
     "Stefan van der Walt", "CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/", "holdout"),
    ("coffee.jpg", "scikit-image", "coffee.png", "Coffee cup (Pikolo Espresso Bar)",
     "Rachel Michetti", "CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/", "holdout"),
    ("flower.jpg", "scikit-learn", "flower.jpg", "Flower",
     "vultilion (Flickr), retrieved by Robert Layton", "CC BY 2.0",
     "https://creativecommons.org/licenses/by/2.0/", "holdout"),
    ("gravel.jpg", "scikit-image", "gravel.png", "Gravel (grayscale)",
     "CC0Textures (Gravel04)", "CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/", "calibration"),
    ("grace_hopper.jpg", "matplotlib", "grace_hopper.jpg", "Rear Admiral Grace Hopper",
     "U.S. Navy (James S. Davis)", "Public domain (U.S. government work)",
     "https://commons.wikimedia.org/wiki/File:Commodore_Grace_M._Hopper,_USN_(covered).jpg", "holdout"),
) + tuple(
    (f"mate_{name.removesuffix('.jpg').lower()}.jpg", "mate-backgrounds", name, f"{name.removesuffix('.jpg')} "
     "(MATE nature background)", credit, "GPL-2+", "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
     "holdout" if name in _MATE_HOLDOUT else "calibration")
    for name, credit in sorted(_MATE_CREDITS.items()))


def _package_data_dir(package: str, mate_dir: Path = MATE_NATURE_DIR) -> tuple[Path, str]:
    if package == "mate-backgrounds":
        if not mate_dir.is_dir():
            raise SystemExit(f"{mate_dir}: not found; install Debian's mate-backgrounds (apt-get install "
                             "mate-backgrounds) or pass --mate-dir")
        return mate_dir, "Debian mate-backgrounds"
    if package == "matplotlib":
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data", matplotlib.__version__
    if package == "scikit-image":
        import skimage

        return Path(skimage.__file__).parent / "data", skimage.__version__
    if package == "scikit-learn":
        import sklearn

        return Path(sklearn.__file__).parent / "datasets" / "images", sklearn.__version__
    raise ValueError(f"unknown package {package!r}")


def _encode(src: Path) -> bytes:
    with Image.open(src) as im:
        im.load()
        rgb = im.convert("RGB")
    short = min(rgb.size)
    if short > MAX_SHORT_SIDE_PX:
        scale = MAX_SHORT_SIDE_PX / short
        size = (round(rgb.width * scale), round(rgb.height * scale))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    # No EXIF, no ICC profile: the embedded files carry pixels only.
    rgb.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


def build(out_dir: Path, mate_dir: Path = MATE_NATURE_DIR) -> dict:
    import hashlib

    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.jpg"):  # a photo dropped from SOURCES must not linger unlisted
        old.unlink()
    entries = []
    for name, package, filename, title, credit, licence, url, split in SOURCES:
        data_dir, version = _package_data_dir(package, mate_dir)
        data = _encode(data_dir / filename)
        (out_dir / name).write_bytes(data)
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
        entries.append({
            "file": name,
            "split": split,
            "title": title,
            "source": f"{package} {version}: {filename}",
            "credit": credit,
            "licence": licence,
            "licence_url": url,
            "width_px": size[0],
            "height_px": size[1],
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        })
    manifest = {
        "schema": "edgenet.calibration-set/1",
        "description": "edgenet's embedded default calibration images; 'holdout' images are never "
                       "used for calibration (reserved for the conversion fidelity check and the accuracy budget).",
        "distinct_photographs": len(entries),
        "images": entries,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).resolve().parent.parent / "edgenet" / "data" / "calibration"
    parser.add_argument("--out", type=Path, default=default_out, help="output folder")
    parser.add_argument("--mate-dir", type=Path, default=MATE_NATURE_DIR,
                        help="the nature photographs of Debian's mate-backgrounds")
    args = parser.parse_args(argv)
    manifest = build(args.out, args.mate_dir)
    total = sum(e["size_bytes"] for e in manifest["images"])
    for e in manifest["images"]:
        print(f"{e['split']:<12}{e['file']:<24}{e['width_px']}x{e['height_px']:<6}{e['size_bytes']:>9} B  "
              f"{e['licence']}", file=sys.stderr)
    print(f"{len(manifest['images'])} images, {total} bytes -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

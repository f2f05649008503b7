#!/usr/bin/env python
"""Regenerate edgenet's embedded default calibration images from what packages ship.

The default set is every distinct real photograph of an everyday scene or object that we found shipped inside a
package under a licence that allows redistribution: scikit-image, scikit-learn and matplotlib (PyPI, the dev
extra) and ten Debian packages (wallpapers, avatar photos, the Scratch 1.4 and Tux Paint photo backgrounds, the
Palapeli puzzles, the KPhotoAlbum demo). No ImageNet image (foolbox's samples are ImageNet photos: excluded), no
drawing or render, no portrait of a private person. Each photo is re-encoded as JPEG (quality 85, shorter side at
most 320 px, EXIF orientation applied, no metadata kept) and listed with its source, credit, licence, split and
sha256 in ``manifest.json``; the table in ``calibration/README.md`` is written from the same rows.

Split: within each package, in file-name order, every third photograph is held out (never calibrates; the
fidelity check and the accuracy budget judge on those), so both splits hold every kind of scene.

Usage (from the repository root, with the dev extra installed, on Debian)::

    .venv/bin/python calibration/build_default_set.py [--out edgenet/data/calibration] [--debs DIR]

The Debian packages are fetched with ``apt-get download`` into ``--debs`` (default ``~/.cache/edgenet/debs``) unless
their ``.deb`` is already there, and unpacked with ``dpkg-deb -x``; nothing is installed, no root is needed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

MAX_SHORT_SIDE_PX = 320
#: A source photo smaller than this is left out (an upscaled thumbnail is not a photograph of the scene).
MIN_SHORT_SIDE_PX = 200
JPEG_QUALITY = 85
#: Within each package, every HOLDOUT_EVERY-th photo (in file-name order) is held out.
HOLDOUT_EVERY = 3

LICENCE_URLS = {
    "Public domain": "https://creativecommons.org/publicdomain/mark/1.0/",
    "CC0 1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC BY 2.0": "https://creativecommons.org/licenses/by/2.0/",
    "CC BY 4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC BY-SA 3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
    "CC BY-SA 4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "GPL-2+": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "LGPL-2.1+": "https://www.gnu.org/licenses/old-licenses/lgpl-2.1.html",
    "LGPL-3": "https://www.gnu.org/licenses/lgpl-3.0.html",
}


@dataclass(frozen=True)
class Photo:
    """One embedded photograph: where it comes from, who made it, under which licence."""

    file: str  # output name in edgenet/data/calibration
    package: str  # PyPI or Debian package that ships it
    member: str  # path inside the package's data folder (PyPI) or inside the .deb (Debian)
    title: str
    credit: str
    licence: str  # a key of LICENCE_URLS, or the text the package's copyright file gives
    url: str = ""  # the photo's own page, when known; else the licence's

    def __post_init__(self):
        if not re.fullmatch(r"[a-z0-9_.-]+\.jpg", self.file):
            raise ValueError(f"{self.file!r}: output names are lower-case .jpg")


PYPI = (
    Photo("astronaut.jpg", "scikit-image", "astronaut.png", "Astronaut Eileen Collins",
          "NASA (NASA Great Images database)", "Public domain", "https://flic.kr/p/r9qvLn"),
    Photo("rocket.jpg", "scikit-image", "rocket.jpg", "Falcon 9 launch of DSCOVR", "SpaceX", "Public domain",
          "https://www.flickr.com/photos/spacexphotos/16511594820/"),
    Photo("camera.jpg", "scikit-image", "camera.png", "Camera man (grayscale)", "Lav Varshney", "CC0 1.0"),
    Photo("coins.jpg", "scikit-image", "coins.png", "Greek coins from Pompeii (grayscale)",
          "Brooklyn Museum Collection", "Public domain",
          "https://www.brooklynmuseum.org/opencollection/archives/image/51611"),
    Photo("hubble_deep_field.jpg", "scikit-image", "hubble_deep_field.jpg", "Hubble eXtreme Deep Field", "NASA",
          "Public domain", "http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/"),
    Photo("grass.jpg", "scikit-image", "grass.png", "Grass (grayscale)", "linolafett (DeviantArt)", "CC0 1.0"),
    Photo("brick.jpg", "scikit-image", "brick.png", "Brick wall (grayscale)", "CC0Textures (Bricks25)", "CC0 1.0"),
    Photo("gravel.jpg", "scikit-image", "gravel.png", "Gravel (grayscale)", "CC0Textures (Gravel04)", "CC0 1.0"),
    Photo("chelsea.jpg", "scikit-image", "chelsea.png", "Chelsea the cat", "Stefan van der Walt", "CC0 1.0"),
    Photo("coffee.jpg", "scikit-image", "coffee.png", "Coffee cup (Pikolo Espresso Bar)", "Rachel Michetti",
          "CC0 1.0"),
    Photo("china.jpg", "scikit-learn", "china.jpg", "China (temple roof)",
          "danielbuechele (Flickr), retrieved by Robert Layton", "CC BY 2.0"),
    Photo("flower.jpg", "scikit-learn", "flower.jpg", "Flower", "vultilion (Flickr), retrieved by Robert Layton",
          "CC BY 2.0"),
    Photo("grace_hopper.jpg", "matplotlib", "grace_hopper.jpg", "Rear Admiral Grace Hopper",
          "U.S. Navy (James S. Davis)", "Public domain",
          "https://commons.wikimedia.org/wiki/File:Commodore_Grace_M._Hopper,_USN_(covered).jpg"),
)


def _debian(package: str, folder: str, prefix: str, rows: dict[str, tuple[str, str]], what: str) -> tuple[Photo, ...]:
    """Photos of one Debian package: ``rows`` maps a file (under ``folder`` in the .deb) to (credit, licence)."""
    def subject(name: str) -> str:  # a Plasma wallpaper is a folder (NAME/contents/images/SIZE.jpg)
        return name.split("/")[0] if "/contents/" in name else Path(name).stem

    return tuple(
        Photo(f"{prefix}_{subject(name).lower()}.jpg", package, f"{folder}/{name}", f"{subject(name)} ({what})",
              credit, licence)
        for name, (credit, licence) in sorted(rows.items()))


def _same(credit: str, licence: str, names: str) -> dict[str, tuple[str, str]]:
    return {name: (credit, licence) for name in names.split()}


# Credits and licences as each package's debian/copyright (or, where it names one, the upstream metadata beside the
# file) gives them. The left-out files of these packages are drawings, renders, thumbnails or private portraits.
DEBIAN = (
    _debian("mate-backgrounds", "usr/share/backgrounds/mate/nature", "mate", {
        "Aqua.jpg": ("Charles Barbin", "GPL-2+"), "LadyBird.jpg": ("Charles Barbin", "GPL-2+"),
        "YellowFlower.jpg": ("Charles Barbin", "GPL-2+"), "Garden.jpg": ("Charles Barbin", "GPL-2+"),
        "Blinds.jpg": ("Lennart Poettering, Andrea Cimitan", "GPL-2+"),
        "Dune.jpg": ("Marco Cogoni, Hylke Bons", "GPL-2+"), "FreshFlower.jpg": ("Jens Ansorg", "GPL-2+"),
        "GreenMeadow.jpg": ("Timothy Schellhase, Lapo Calamandrei", "GPL-2+"),
        "RainDrops.jpg": ("blackcombwhistler07", "GPL-2+"), "Storm.jpg": ("Sergey Nazarov", "GPL-2+"),
        "TwoWings.jpg": ("Charles Barbin, Hylke Bons", "GPL-2+"), "Wood.jpg": ("Jean-Francois Fortin Tam", "GPL-2+"),
    }, "MATE nature background")
    + _debian("lomiri-wallpapers-16.04", "usr/share/backgrounds", "lomiri", {
        "aitzgorri_by_Aitzol_Berasategi.jpg": ("Aitzol Berasategi", "CC BY 4.0"),
        "friends_by_Aitzol_Berasategi.jpg": ("Aitzol Berasategi", "CC BY 4.0"),
        "life_by_Aitzol_Berasategi.jpg": ("Aitzol Berasategi", "CC BY 4.0"),
        "picosdeeuropa_by_Aitzol_Berasategi.jpg": ("Aitzol Berasategi", "CC BY 4.0"),
        "sunset_by_Aitzol_Berasategi.jpg": ("Aitzol Berasategi", "CC BY 4.0"),
        "Bridge_by_Sander_Klootwijk.jpg": ("Sander Klootwijk", "CC BY-SA 4.0"),
        "Dragonfly_by_Bolly.jpg": ('"Bolly"', "CC BY-SA 4.0"),
        "free_by_Peter_Nerlich.jpg": ("Peter Nerlich", "CC BY-SA 4.0"),
        "greentock_by_Peter_Nerlich.jpg": ("Peter Nerlich", "CC BY-SA 4.0"),
        "Picture_0B_by_freespace.jpg": ('Trevor "Freespace"', "CC BY 4.0"),
        "Picture_1A_by_freespace.jpg": ('Trevor "Freespace"', "CC BY 4.0"),
        "seeding_by_Clements_Engelhardt.jpg": ("Clemens Engelhardt", "CC0 1.0"),
        "Wine_by_Jakkub_Mede.jpg": ("Jakub Mede", "CC BY 4.0"),
    }, "Ubuntu Touch 16.04 wallpaper")
    + _debian("lomiri-wallpapers-20.04", "usr/share/backgrounds", "lomiri20", {
        "Kleiber_by_Lukas_Baubkus.jpg": ("Lukas Baubkus", "CC BY-SA 3.0"),
    }, "Ubuntu Touch 20.04 wallpaper")
    + _debian("plasma-workspace-wallpapers", "usr/share/wallpapers", "plasma", {
        "BytheWater/contents/images/1280x1024.jpg": ("Maciej Wiklo", "LGPL-3"),
        "ColdRipple/contents/images/1280x1024.jpg": ("Risto Saukonpää", "LGPL-3"),
        "ColorfulCups/contents/images/2560x1600.jpg": ("Dmitri Popov", "LGPL-3"),
        "DarkestHour/contents/images/1280x1024.jpg": ("Risto Saukonpää", "LGPL-3"),
        "EveningGlow/contents/images/1280x1024.jpg": ("Ian Hex", "LGPL-3"),
        "FallenLeaf/contents/images/1280x1024.jpg": ("Martin Klapetek", "LGPL-3"),
        "Grey/contents/images/1280x1024.jpg": ("Sigi Sagi", "LGPL-3"),
        "Kite/contents/images/1280x1024.jpg": ("Risto Saukonpää", "LGPL-3"),
        "OneStandsOut/contents/images/1280x1024.jpg": ("Risto Saukonpää", "LGPL-3"),
        "Path/contents/images/1280x1024.jpg": ("Risto Saukonpää", "LGPL-3"),
        "summer_1am/contents/images/1280x1024.jpg": ("Risto Saukonpää", "LGPL-3"),
    }, "KDE Plasma wallpaper")
    + _debian("lxqt-themes", "usr/share/lxqt/wallpapers", "lxqt", {
        "Butterfly-Kenneth-Wimer.jpg": ("Kenneth Wimer, LXQt team", "LGPL-2.1+"),
        **_same("LXQt team", "LGPL-2.1+", "after-the-rain.jpg fog.jpg this-is-not-windows.jpg"),
    }, "LXQt wallpaper")
    + _debian("gnome-control-center-data", "usr/share/pixmaps/faces", "gnome", _same(
        "GNOME Settings contributors", "GPL-2+",
        "bicycle.jpg book.jpg calculator.jpg cat.jpg coffee2.jpg flower2.jpg gamepad.jpg guitar2.jpg headphones.jpg "
        "hummingbird.jpg mountain.jpg plane.jpg surfer.jpg tomatoes.jpg tree.jpg"), "GNOME avatar photo")
    + _debian("scratch", "usr/share/scratch/Media/Backgrounds", "scratch", _same(
        "MIT Scratch team (Scratch 1.4 media library)", "CC BY-SA 3.0",
        "Indoors/chalkboard.jpg Indoors/clothing-store.jpg Indoors/hall.jpg Indoors/kitchen.jpg "
        "Indoors/the-movies-inside.jpg Nature/beach-malibu.jpg Nature/canyon.jpg Nature/flower-bed.jpg "
        "Nature/forest.jpg Nature/garden-rock.jpg Nature/grand-canyon.jpg Nature/gravel-desert.jpg Nature/hill.jpg "
        "Nature/lake.jpg Nature/moon.jpg Nature/pathway.jpg Nature/tree.jpg Nature/water-and-rocks.jpg "
        "Nature/wave.jpg Nature/woods-and-bench.jpg Outdoors/all-sports-mural.jpg Outdoors/atom-playground.jpg "
        "Outdoors/bench-with-view.jpg Outdoors/berkeley-mural.jpg Outdoors/boardwalk.jpg "
        "Outdoors/brick-wall-and-stairs.jpg Outdoors/brick-wall1.jpg Outdoors/brick-wall2.jpg "
        "Outdoors/building-at-mit.jpg Outdoors/building-fireproof.jpg Outdoors/castle.jpg "
        "Outdoors/city-with-water.jpg Outdoors/city-with-water2.jpg Outdoors/driveway.jpg "
        "Outdoors/hallway_outdoors.jpg Outdoors/hay_field.jpg Outdoors/houses.jpg Outdoors/mansion.jpg "
        "Outdoors/mural-faro.jpg Outdoors/parking-ramp.jpg Outdoors/pool.jpg Outdoors/route66.jpg "
        "Outdoors/silos.jpg Outdoors/the-movies.jpg Outdoors/train-tracks1.jpg Outdoors/train-tracks2.jpg "
        "Outdoors/village.jpg Outdoors/wooden-house.jpg Sports/baseball-field.jpg Sports/basketball-court1-a.jpg "
        "Sports/basketball-court1-b.jpg Sports/football-field.jpg Sports/playing-field.jpg "
        "Sports/tennis-backboard.jpg"), "Scratch 1.4 background")
    + _debian("tuxpaint-data", "usr/share/tuxpaint/templates", "tuxpaint", _same(
        "Bill Kendrick (Tux Paint)", "GPL-2+",
        "burnt_bark.jpg cliff.jpg corn_maze.jpg jellyfish.jpg lighthouse.jpg mossy_bark.jpg mossy_log.jpg "
        "mudstone.jpg ocean_splash.jpg ocean_waves.jpg redwoods_above.jpg rocks.jpg sheep.jpg spiders_web.jpg "
        "sun_behind_clouds.jpg sun_behind_leaves.jpg trees_above.jpg trees_at_dusk.jpg wool_mill_machine.jpg"),
        "Tux Paint template photo")
    + _debian("palapeli-data", "usr/share/palapeli/collection", "palapeli", {
        "castle-maintenon.jpg": ("Eric Pouhier", "GPL-2+"), "cincinnati-bridge.jpg": ("Derek Jensen", "GPL-2+"),
        "citrus-fruits.jpg": ("US Department of Agriculture", "GPL-2+"),
        "european-honey-bee.jpg": ("John Severns", "GPL-2+"),
        "panther-chameleon-female.jpg": ("B. Navez and others", "GPL-2+"),
    }, "Palapeli puzzle photo")
    + _debian("kphotoalbum", "usr/share/kphotoalbum/demo", "kphotoalbum", _same(
        "Jesper K. Pedersen (KPhotoAlbum demo)", "GPL-2+",
        "blackie.jpg donna.jpg donna_2.jpg grand_canyon_3.jpg skagen.jpg skagen_2.jpg snow.jpg spiff.jpg "
        "spiff_2.jpg sunset.jpg"), "KPhotoAlbum demo photo")
)
SOURCES: tuple[Photo, ...] = PYPI + DEBIAN


def split_of(photo: Photo) -> str:
    """``"holdout"`` for every :data:`HOLDOUT_EVERY`-th photo of its package in file-name order, else
    ``"calibration"``. Holdout photos never calibrate: the fidelity check and the accuracy budget judge on them."""
    mine = sorted(p.file for p in SOURCES if p.package == photo.package)
    return "holdout" if mine.index(photo.file) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1 else "calibration"


def _pypi_dir(package: str) -> tuple[Path, str]:
    if package == "matplotlib":
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data", matplotlib.__version__
    if package == "scikit-image":
        import skimage

        return Path(skimage.__file__).parent / "data", skimage.__version__
    if package == "scikit-learn":
        import sklearn

        return Path(sklearn.__file__).parent / "datasets" / "images", sklearn.__version__
    raise ValueError(f"unknown PyPI package {package!r}")


def _unpacked_deb(package: str, debs: Path) -> tuple[Path, str]:
    """Unpack Debian ``package`` (fetched into ``debs`` with ``apt-get download`` unless its .deb is there)."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool}: not found; the Debian photos need a Debian system (apt-get, dpkg-deb)")
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        debs.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if run.returncode != 0 or not found:
            why = (run.stderr.strip().splitlines() or ["no .deb written"])[-1]
            raise SystemExit(f"apt-get download {package}: {why}")
    deb = found[-1]

    def dpkg_deb(*args: str) -> str:
        run = subprocess.run(["dpkg-deb", *args], capture_output=True, text=True)
        if run.returncode != 0:
            why = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
            raise SystemExit(f"{deb}: not a readable .deb ({why})")
        return run.stdout.strip()

    version = dpkg_deb("-f", str(deb), "Version")
    root = debs / "unpacked" / f"{package}_{version}"
    if not root.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=debs, prefix=".unpack-"))
        try:
            dpkg_deb("-x", str(deb), str(tmp))
        except SystemExit:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        root.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, root)
    return root, f"Debian {version}"


def _encode(src: Path) -> bytes:
    with Image.open(src) as im:
        im.load()
        rgb = ImageOps.exif_transpose(im).convert("RGB")
    short = min(rgb.size)
    if short < MIN_SHORT_SIDE_PX:
        raise SystemExit(f"{src}: {rgb.width}x{rgb.height} px, shorter side below {MIN_SHORT_SIDE_PX} px")
    if short > MAX_SHORT_SIDE_PX:
        scale = MAX_SHORT_SIDE_PX / short
        size = (round(rgb.width * scale), round(rgb.height * scale))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    # No EXIF, no ICC profile: the embedded files carry pixels only.
    rgb.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


def build(out_dir: Path, debs: Path) -> dict:
    names = [p.file for p in SOURCES]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate output names in SOURCES")
    roots: dict[str, tuple[Path, str]] = {}
    entries = []
    for photo in SOURCES:
        if photo.package not in roots:
            roots[photo.package] = (_unpacked_deb(photo.package, debs) if photo in DEBIAN
                                    else _pypi_dir(photo.package))
        root, version = roots[photo.package]
        data = _encode(root / photo.member)
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
        entries.append((photo, data, {
            "file": photo.file,
            "split": split_of(photo),
            "title": photo.title,
            "source": f"{photo.package} {version}: {photo.member}",
            "credit": photo.credit,
            "licence": photo.licence,
            "licence_url": photo.url or LICENCE_URLS[photo.licence],
            "width_px": size[0],
            "height_px": size[1],
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }))
    if len({e["sha256"] for _, _, e in entries}) != len(entries):
        raise SystemExit("two sources give the same pixels: the set must hold distinct photographs")
    # Write only when everything was read: an earlier set stays whole if a source is missing.
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.jpg"):  # a photo dropped from SOURCES must not linger unlisted
        old.unlink()
    for photo, data, _ in entries:
        (out_dir / photo.file).write_bytes(data)
    manifest = {
        "schema": "edgenet.calibration-set/1",
        "description": "edgenet's embedded default calibration images; 'holdout' images are never "
                       "used for calibration (reserved for the conversion fidelity check and the accuracy budget).",
        "distinct_photographs": len(entries),
        "images": [e for _, _, e in entries],
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
    return manifest


TABLE_START, TABLE_END = "<!-- photo table: written by build_default_set.py -->", "<!-- end of photo table -->"


def write_readme_table(readme: Path, manifest: dict) -> None:
    """Replace the photo table of ``calibration/README.md`` with one row per manifest entry."""
    rows = ["| file | split | source (package version: file) | credit | licence |", "| --- | --- | --- | --- | --- |"]
    for e in manifest["images"]:
        split = "**holdout**" if e["split"] == "holdout" else e["split"]
        rows.append(f"| {e['file']} | {split} | {e['source']} | {e['credit']} | [{e['licence']}]({e['licence_url']}) |")
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    readme.write_text(text[:start] + "\n\n" + "\n".join(rows) + "\n\n" + text[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--out", type=Path, default=here.parent / "edgenet" / "data" / "calibration",
                        help="output folder")
    parser.add_argument("--debs", type=Path, default=Path.home() / ".cache" / "edgenet" / "debs",
                        help="folder of the Debian packages' .deb files (fetched with apt-get download if missing)")
    args = parser.parse_args(argv)
    manifest = build(args.out, args.debs)
    write_readme_table(here / "README.md", manifest)
    images = manifest["images"]
    for e in images:
        print(f"{e['split']:<12}{e['file']:<36}{e['width_px']}x{e['height_px']:<6}{e['size_bytes']:>9} B  "
              f"{e['licence']}", file=sys.stderr)
    held = sum(e["split"] == "holdout" for e in images)
    print(f"{len(images)} photos ({len(images) - held} calibrate, {held} held out), "
          f"{sum(e['size_bytes'] for e in images)} bytes -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The book's datasets (MNIST, FashionMNIST, ColorMNIST, CelebA) as float32 images in [0, 1], CHW.

Where the files go, under the data root (``--data-dir``, else ``$RVAE_DATA``, else ``~/.cache/rvae/data``)::

    MNIST/raw/{train,t10k}-images-idx3-ubyte[.gz], {train,t10k}-labels-idx1-ubyte[.gz]
    FashionMNIST/raw/   (the same four names)
    celeba/list_attr_celeba.txt, celeba/list_eval_partition.txt, celeba/img_align_celeba/*.jpg

Gzipped IDX files are decompressed once into ``$RVAE_CACHE`` (default ``~/.cache/rvae/prepared``), so the
data root may be read-only. CelebA may be any subset of the official images: only files on disk are used.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import functional as TF

from rvae.errors import DatasetNotFoundError, ParameterError, RvaeError
from rvae.progress import progress_bar

PathLike = str | os.PathLike
SPLITS = ("train", "test")
CELEBA_SPLITS = ("train", "valid", "test", "all")  # list_eval_partition.txt codes 0, 1, 2; "all" = every image
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CELEBA_ATTR_FILE, CELEBA_PARTITION_FILE = "list_attr_celeba.txt", "list_eval_partition.txt"
CELEBA_IMAGE_DIR = "img_align_celeba"
CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
_ROOT_HINT = "set RVAE_DATA or --data-dir to another data root"

#: The 7 non-black corners of the RGB cube, one row per colour index 0..6 (names in ``COLOUR_NAMES``).
COLOUR_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan", "white")
COLOURS = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]],
                       dtype=torch.float32)
#: Seed of the ColorMNIST test colours: fixed, so every run and every training seed is evaluated alike.
TEST_COLOUR_SEED = 12345

#: The 40 CelebA attributes in the column order of ``list_attr_celeba.txt``.
CELEBA_ATTRIBUTES = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
]


def data_root(data_dir: PathLike | None = None) -> Path:
    """Absolute data root: ``data_dir`` if given (non-empty), else ``$RVAE_DATA``, else ``~/.cache/rvae/data``."""
    chosen = data_dir if data_dir not in (None, "") else os.environ.get("RVAE_DATA") or "~/.cache/rvae/data"
    return Path(os.path.abspath(Path(chosen).expanduser()))


def cache_root() -> Path:
    """Absolute writable folder for prepared files: ``$RVAE_CACHE``, else ``~/.cache/rvae/prepared``."""
    return Path(os.path.abspath(Path(os.environ.get("RVAE_CACHE") or "~/.cache/rvae/prepared").expanduser()))


def _check_split(split: str, choices: tuple[str, ...] = SPLITS) -> None:
    if split not in choices:
        raise ValueError(f"split must be one of {', '.join(map(repr, choices))}, not {split!r}")


def _limit(n: int, limit: int | None) -> int:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or >= 0, not {limit}")
    return n if limit is None else min(n, limit)


# ----------------------------------------------------------------------------------------------- MNIST-like (IDX)
def _find_idx(raw: Path) -> dict[str, Path | None]:
    """Each IDX file's uncompressed (preferred) or gzipped copy in ``raw``, or None when it has neither."""
    return {name: next((p for p in (raw / name, raw / f"{name}.gz") if p.is_file()), None) for name in IDX_FILES}


def _idx_missing_message(name: str, raw: Path, found: dict[str, Path | None], failure: str = "") -> str:
    missing = [f"{n}.gz" for n, p in found.items() if p is None]
    present = ", ".join(p.name for p in found.values() if p is not None) or "none of them"
    return (f"{name} not found: put {', '.join(missing)} into {raw}{os.sep} (found there: {present}){failure}; "
            f"{_ROOT_HINT}")


def _materialise(src: Path, dst: Path) -> None:
    """Write ``src`` (gunzipped if ``.gz``) to ``dst`` atomically, unless ``dst`` already has its size."""
    if src.suffix == ".gz":
        with open(src, "rb") as f:  # gzip's trailer holds the uncompressed size modulo 2**32
            f.seek(-4, os.SEEK_END)
            size = int.from_bytes(f.read(4), "little")
    else:
        size = src.stat().st_size
    if dst.is_file() and dst.stat().st_size % 2**32 == size:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, (gzip.open if src.suffix == ".gz" else open)(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _torchvision_idx(name: str, split: str, data_dir: PathLike | None, download: bool):
    """torchvision's ``name`` dataset of ``split``, read from the root or from gunzipped copies in the cache."""
    _check_split(split)
    cls = getattr(torchvision.datasets, name)
    root = data_root(data_dir)
    raw = root / name / "raw"
    found, failure = _find_idx(raw), ""
    if download and None in found.values():
        try:
            cls(root=str(root), train=True, download=True)
        except Exception as exc:  # offline, read-only root, mirror down...: reported below if files still lack
            detail = ([line.strip() for line in str(exc).splitlines() if line.strip()] or [""])[-1][:120]
            failure = f"; the download failed ({type(exc).__name__}: {detail})"
        found = _find_idx(raw)
    if None in found.values():
        raise DatasetNotFoundError(_idx_missing_message(name, raw, found, failure))
    # torchvision only accepts the four *uncompressed* files, all of them, in <root>/<name>/raw/.
    tv_root = root
    if any(p.name != n for n, p in found.items()):
        tv_root = cache_root()
        for n, p in found.items():
            _materialise(p, tv_root / name / "raw" / n)
    return cls(root=str(tv_root), train=split == "train", download=False)


def _idx_uint8(name: str, split: str, data_dir, download: bool) -> tuple[Tensor, Tensor]:
    ds = _torchvision_idx(name, split, data_dir, download)
    _record_use(name, data_dir)
    return ds.data, ds.targets.long()


class GreyImages(Dataset):
    """Items (image[1,H,W] float32 in [0,1], label int64) over uint8 images ``data`` (N,H,W) and ``targets`` (N,)."""

    def __init__(self, data: Tensor, targets: Tensor):
        self.data, self.targets = data, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.data[i].unsqueeze(0).float().div_(255), self.targets[i]


# ------------------------------------------------------------------------------------------- provenance of the files
#: MD5s of the official files (gzipped, and uncompressed where published), as torchvision and the
#: datasets' own pages list them. Files that match are the official train/test split.
OFFICIAL_MD5 = {
    "MNIST": {
        "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
        "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", None),
        "t10k-images-idx3-ubyte": ("9fb629c4189551a2d022fa330f9573f3", None),
        "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", None),
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        "train-labels-idx1-ubyte": ("25c81989df183df01b3e8a0aad5dffbe", None),
        "t10k-images-idx3-ubyte": ("bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"),
        "t10k-labels-idx1-ubyte": ("bb300cfdad3c16e7a12a480ee83cd310", None),
    },
}
_MD5_CACHE: dict[tuple[str, int, int], str] = {}
_USED: dict[str, dict] = {}


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes (cached per path, size and modification time)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _MD5_CACHE:
        digest = hashlib.md5()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        _MD5_CACHE[key] = digest.hexdigest()
    return _MD5_CACHE[key]


def idx_provenance(name: str, data_dir: PathLike | None = None) -> dict:
    """Whether the IDX files of ``name`` under the data root are the official ones, by their MD5s.

    Returns {"dataset", "official" (bool), "files": {file: md5}, "differing": [files that are not the
    official bytes], "description" (one sentence for a chapter's data section)}.
    """
    if name not in OFFICIAL_MD5:
        raise ValueError(f"no official MD5s are known for {name!r}; known: {', '.join(OFFICIAL_MD5)}")
    found = _find_idx(data_root(data_dir) / name / "raw")
    files, differing = {}, []
    for file, path in found.items():
        if path is None:
            differing.append(file)
            continue
        md5 = file_md5(path)
        files[path.name] = md5
        gz_md5, raw_md5 = OFFICIAL_MD5[name][file]
        if md5 != (gz_md5 if path.suffix == ".gz" else raw_md5):
            differing.append(file)
    official = not differing
    if official:
        description = f"{name}: the official files (all four MD5s match), official train/test split."
    else:
        description = (f"{name}: NOT the official files ({', '.join(differing)} differ from the official MD5s); "
                       "results on it are not comparable with official-split numbers.")
        if name == "FashionMNIST" and differing and all("images" in f for f in differing):
            description = (f"{name}: official labels, but image files that differ from the official ones "
                           f"({', '.join(differing)}): here, real images in a train/test split that is not "
                           "the official one (see the data's SOURCES.md); results are not comparable with "
                           "official-split numbers.")
    return {"dataset": name, "official": official, "files": files, "differing": differing,
            "description": description}


def used_datasets() -> dict[str, dict]:
    """Provenance of every dataset this process has loaded, by name (what results record)."""
    return {name: dict(record) for name, record in sorted(_USED.items())}


def _record_use(name: str, data_dir) -> None:
    if name not in _USED:
        _USED[name] = idx_provenance(name, data_dir) if name in OFFICIAL_MD5 else {"dataset": name}


def _idx_tensors(name: str, split: str, data_dir, download: bool, limit: int | None) -> tuple[Tensor, Tensor]:
    data, targets = _idx_uint8(name, split, data_dir, download)
    n = _limit(len(targets), limit)
    return data[:n].unsqueeze(1).float().div_(255), targets[:n]


def mnist_tensors(split: str = "train", data_dir: PathLike | None = None, download: bool = True,
                  limit: int | None = None) -> tuple[Tensor, Tensor]:
    """MNIST ``split`` ("train"/"test") as images (N,1,28,28) float32 in [0,1] and digits (N,) int64."""
    return _idx_tensors("MNIST", split, data_dir, download, limit)


def fashion_mnist_tensors(split: str = "train", data_dir: PathLike | None = None, download: bool = True,
                          limit: int | None = None) -> tuple[Tensor, Tensor]:
    """FashionMNIST ``split`` as images (N,1,28,28) float32 in [0,1] and classes (N,) int64."""
    return _idx_tensors("FashionMNIST", split, data_dir, download, limit)


def load_mnist(split: str = "train", data_dir: PathLike | None = None, download: bool = True) -> GreyImages:
    """MNIST ``split`` as a dataset of (image[1,28,28] float32 in [0,1], digit int64)."""
    return GreyImages(*_idx_uint8("MNIST", split, data_dir, download))


def load_fashion_mnist(split: str = "train", data_dir: PathLike | None = None, download: bool = True) -> GreyImages:
    """FashionMNIST ``split`` as a dataset of (image[1,28,28] float32 in [0,1], class int64)."""
    return GreyImages(*_idx_uint8("FashionMNIST", split, data_dir, download))


#: The 28 x 28 grey-image datasets a chapter can name: chapter name -> (folder under the data root, loader).
GREY_DATASETS = {"mnist": ("MNIST", mnist_tensors), "fashion_mnist": ("FashionMNIST", fashion_mnist_tensors)}


def _check_grey_names(names: list[str]) -> None:
    unknown = [name for name in names if name not in GREY_DATASETS]
    if unknown:
        raise ParameterError(f"unknown dataset(s) {unknown}; valid: {', '.join(GREY_DATASETS)}")


def grey_tensors(name: str, split: str = "train", data_dir: PathLike | None = None, download: bool = True,
                 limit: int | None = None) -> tuple[Tensor, Tensor]:
    """The grey dataset ``name`` (a key of :data:`GREY_DATASETS`) as images (N,1,28,28) in [0,1] and labels (N,)."""
    _check_grey_names([name])
    return GREY_DATASETS[name][1](split, data_dir, download, limit)


def runnable_grey_datasets(names: list[str], data_dir: PathLike | None = None) -> tuple[list[str], dict[str, str]]:
    """Split ``names`` into those whose files are present (in order) and {name: why not} for the rest.

    Raises ParameterError for a name that is not in :data:`GREY_DATASETS`, and DatasetNotFoundError
    (whose message says which files go where) when none of them can run.
    """
    _check_grey_names(list(names))
    report = describe_data(data_dir)
    runnable = [name for name in names if report[GREY_DATASETS[name][0]]["available"]]
    not_run = {name: report[GREY_DATASETS[name][0]]["reason"] for name in names if name not in runnable}
    if not runnable:
        raise DatasetNotFoundError("none of the datasets asked for has its files: " + "; ".join(not_run.values()))
    return runnable, not_run


# ----------------------------------------------------------------------------------------------------- ColorMNIST
def colour_indices(n: int, split: str, seed: int = 0, epoch: int = 0) -> Tensor:
    """Colour index (n,) int64 in 0..6 per image: test from ``TEST_COLOUR_SEED``, train from (seed, epoch)."""
    _check_split(split)
    g = torch.Generator().manual_seed(TEST_COLOUR_SEED if split == "test" else seed + 1_000_003 * (epoch + 1))
    return torch.randint(len(COLOURS), (n,), generator=g)


def colorize(grey: Tensor, colours: Tensor) -> Tensor:
    """Grey images (N,1,H,W) in [0,1] times their colour vectors ``COLOURS[colours]``: (N,3,H,W)."""
    return grey * COLOURS[colours][:, :, None, None]


def colour_mnist_tensors(split: str = "train", data_dir: PathLike | None = None, download: bool = True,
                         limit: int | None = None, seed: int = 0, epoch: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """ColorMNIST ``split``: images (N,3,28,28) float32 in [0,1], digits (N,) and colour indices (N,) int64."""
    data, digits = _idx_uint8("MNIST", split, data_dir, download)
    colours = colour_indices(len(digits), split, seed, epoch)  # drawn for the whole split: limit keeps them
    n = _limit(len(digits), limit)
    return colorize(data[:n].unsqueeze(1).float().div_(255), colours[:n]), digits[:n], colours[:n]


class ColorMNIST(Dataset):
    """MNIST digits times one of the 7 ``COLOURS``: items (image[3,28,28] float32 in [0,1], digit, colour) int64.

    Test colours are fixed; train colours come from (``seed``, epoch): call ``set_epoch(e)`` before each epoch
    (with DataLoader workers, use non-persistent ones so that they see the new colours).
    """

    def __init__(self, split: str = "train", data_dir: PathLike | None = None, download: bool = True,
                 seed: int = 0, limit: int | None = None):
        data, digits = _idx_uint8("MNIST", split, data_dir, download)
        self.split, self.seed, self._total = split, seed, len(digits)
        n = _limit(len(digits), limit)
        self.data, self.digits = data[:n], digits[:n]
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Redraw the train colours for ``epoch`` (the test colours never change)."""
        self.epoch = epoch
        self.colours = colour_indices(self._total, self.split, self.seed, epoch)[: len(self.digits)]

    def __len__(self) -> int:
        return len(self.digits)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        c = self.colours[i]
        return self.data[i].unsqueeze(0).float().div_(255) * COLOURS[c][:, None, None], self.digits[i], c


# --------------------------------------------------------------------------------------------------------- CelebA
_CELEBA_CACHE: dict[tuple, object] = {}  # parsed list files, keyed by (path, mtime, size)


def _cached(path: Path, parse):
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _CELEBA_CACHE:
        _CELEBA_CACHE[key] = parse(path)
    return _CELEBA_CACHE[key]


def _parse_attributes(path: Path) -> tuple[list[str], np.ndarray]:
    """File names (M,) and 0/1 attributes (M,40) uint8 of ``list_attr_celeba.txt``."""
    _, header, body = path.read_bytes().split(b"\n", 2)
    columns, tokens = header.split(), body.split()
    width = len(CELEBA_ATTRIBUTES) + 1
    if [c.decode() for c in columns] != CELEBA_ATTRIBUTES or len(tokens) % width:
        raise RvaeError(f"{path} is not a CelebA attribute file (line 2: the 40 attribute names; "
                        f"then one line per image: name and 40 values -1/1)")
    names = [t.decode() for t in tokens[::width]]
    del tokens[::width]
    values = np.array(tokens, dtype="S2").reshape(len(names), width - 1)
    if not np.all((values == b"1") | (values == b"-1")):
        raise RvaeError(f"{path}: attribute values must be -1 or 1")
    return names, (values == b"1").astype(np.uint8)


def _parse_partition(path: Path) -> dict[str, str]:
    tokens = path.read_bytes().decode().split()
    return dict(zip(tokens[::2], tokens[1::2]))


def _celeba_folder(data_dir: PathLike | None) -> Path:
    """``<root>/celeba`` after checking its two list files and image folder are there."""
    folder = data_root(data_dir) / "celeba"
    missing = [f for f in (CELEBA_ATTR_FILE, CELEBA_PARTITION_FILE) if not (folder / f).is_file()]
    if not (folder / CELEBA_IMAGE_DIR).is_dir():
        missing.append(f"{CELEBA_IMAGE_DIR}{os.sep} (the folder of aligned JPEGs)")
    if missing:
        raise DatasetNotFoundError(
            f"CelebA not found: missing {', '.join(missing)} in {folder}{os.sep}; CelebA is never downloaded "
            f"automatically: obtain it from {CELEBA_URL} and put {CELEBA_ATTR_FILE}, {CELEBA_PARTITION_FILE} and "
            f"{CELEBA_IMAGE_DIR}{os.sep}*.jpg (any subset of the images) into {folder}{os.sep}; {_ROOT_HINT}")
    return folder


def load_face(path: PathLike, crop: int = 148, size: int = 64) -> Tensor:
    """One aligned CelebA JPEG centre-cropped to crop x crop, resized to size x size: (3,size,size) in [0,1]."""
    with Image.open(path) as im:
        im = TF.center_crop(im.convert("RGB"), [crop, crop])
        return TF.to_tensor(TF.resize(im, [size, size], antialias=True))


class CelebA(Dataset):
    """CelebA faces present on disk: items (image[3,size,size] float32 in [0,1], attributes (40,) int64 0/1).

    ``split``: "train", "valid", "test" (official partition) or "all"; ``limit`` keeps the first images.
    ``filenames`` (N names) and ``attributes`` (N,40) follow the order of ``list_attr_celeba.txt``.
    """

    def __init__(self, split: str = "train", data_dir: PathLike | None = None, crop: int = 148, size: int = 64,
                 limit: int | None = None):
        _check_split(split, CELEBA_SPLITS)
        folder = _celeba_folder(data_dir)
        self.image_dir, self.split, self.crop, self.size = folder / CELEBA_IMAGE_DIR, split, crop, size
        names, values = _cached(folder / CELEBA_ATTR_FILE, _parse_attributes)
        partition = _cached(folder / CELEBA_PARTITION_FILE, _parse_partition)
        on_disk = set(os.listdir(self.image_dir))
        present = [i for i, name in enumerate(names) if name in on_disk]
        if not present:
            raise DatasetNotFoundError(
                f"CelebA: none of the images listed in {CELEBA_ATTR_FILE} is in {self.image_dir}{os.sep} (expected "
                f"files such as 000001.jpg from {CELEBA_URL}); {_ROOT_HINT}")
        code = str(CELEBA_SPLITS.index(split))
        keep = [i for i in present if split == "all" or partition.get(names[i]) == code]
        if not keep:
            raise DatasetNotFoundError(
                f"CelebA: none of the {len(present)} images in {self.image_dir}{os.sep} is in the {split!r} split "
                f"of {CELEBA_PARTITION_FILE}; add images of that split or choose another one")
        keep = keep[: _limit(len(keep), limit)]
        self.filenames = [names[i] for i in keep]
        self.attributes = torch.from_numpy(values[keep].astype(np.int64))

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return load_face(self.image_dir / self.filenames[i], self.crop, self.size), self.attributes[i]


def celeba_tensors(split: str = "train", data_dir: PathLike | None = None, limit: int | None = None,
                   crop: int = 148, size: int = 64, progress: bool = True) -> tuple[Tensor, Tensor]:
    """CelebA ``split`` loaded at once: images (N,3,size,size) float32 in [0,1] and attributes (N,40) int64."""
    ds = CelebA(split, data_dir, crop=crop, size=size, limit=limit)
    images = torch.empty(len(ds), 3, size, size)
    paths = [ds.image_dir / name for name in ds.filenames]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # PIL decodes without the GIL
        faces = pool.map(lambda p: load_face(p, crop, size), paths)
        bar = progress_bar(faces, desc=f"CelebA {split}", total=len(paths), enabled=None if progress else False)
        for i, face in enumerate(bar):
            images[i] = face
    return images, ds.attributes


# ------------------------------------------------------------------------------------------------------- summary
def describe_data(data_dir: PathLike | None = None) -> dict[str, dict]:
    """Per dataset name, ``{"available": bool, "reason": one-line str or None}``, from the files alone."""
    root, report = data_root(data_dir), {}
    for name in ("MNIST", "FashionMNIST"):
        found = _find_idx(root / name / "raw")
        reason = _idx_missing_message(name, root / name / "raw", found) if None in found.values() else None
        report[name] = {"available": reason is None, "reason": reason}
    report["ColorMNIST"] = dict(report["MNIST"])  # derived from MNIST on the fly
    try:
        images = _celeba_folder(data_dir) / CELEBA_IMAGE_DIR
        with os.scandir(images) as entries:
            has_jpg = any(e.name.endswith(".jpg") for e in entries)
        reason = None if has_jpg else f"CelebA: no .jpg image in {images}{os.sep}; obtain them from {CELEBA_URL}"
    except DatasetNotFoundError as exc:
        reason = str(exc)
    report["CelebA"] = {"available": reason is None, "reason": reason}
    return report

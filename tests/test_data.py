"""Tests of rvae.data on tiny fake datasets (IDX files, CelebA folder); real-data checks run only where it exists."""
from __future__ import annotations

import gzip
import itertools
import os
import struct
import time
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from rvae import data
from rvae.errors import DatasetNotFoundError, ParameterError, RvaeError

N_TRAIN, N_TEST = 40, 6


# ------------------------------------------------------------------------------------------------------- helpers
def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    """Write ``array`` (uint8, 1-D labels or 3-D images) in the IDX format, gzipped as ``path.gz`` if ``gz``."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = {1: 2049, 3: 2051}[array.ndim]
    payload = struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def fake_idx_arrays(seed: int = 0, n_train: int = N_TRAIN, n_test: int = N_TEST) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255  # both ends of the range
        arrays[f"{prefix}-images-idx3-ubyte"] = images
        arrays[f"{prefix}-labels-idx1-ubyte"] = rng.integers(0, 10, size=n, dtype=np.uint8)
    return arrays


def make_idx_root(root: Path, name: str = "MNIST", gz: bool | set[str] = True, skip: tuple[str, ...] = (),
                  **kwargs) -> dict[str, np.ndarray]:
    """Fake ``<root>/<name>/raw``; ``gz`` True/False for all files, or the set of file names to gzip."""
    arrays = fake_idx_arrays(**kwargs)
    for fname, array in arrays.items():
        if fname not in skip:
            write_idx(root / name / "raw" / fname, array, gz if isinstance(gz, bool) else fname in gz)
    return arrays


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def set_read_only(root: Path, read_only: bool) -> None:
    for p in [root, *root.rglob("*")]:
        mode = (0o555 if p.is_dir() else 0o444) if read_only else (0o755 if p.is_dir() else 0o644)
        os.chmod(p, mode)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Cache and home inside tmp_path, no RVAE_DATA, and torchvision's downloader patched to fail offline."""
    monkeypatch.setenv("RVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RVAE_DATA", raising=False)
    calls = []

    def offline(url, download_root, filename=None, md5=None, **kw):
        calls.append(url)
        raise URLError("offline (download patched in tests)")

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    return calls


# ------------------------------------------------------------------------------------------------------ data_root
def test_data_root_precedence(tmp_path, monkeypatch):
    assert data.data_root() == tmp_path / "home" / ".cache" / "rvae" / "data"
    monkeypatch.setenv("RVAE_DATA", str(tmp_path / "env"))
    assert data.data_root() == tmp_path / "env"
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data.data_root("~/x") == tmp_path / "home" / "x"
    monkeypatch.chdir(tmp_path)
    assert data.data_root("rel") == tmp_path / "rel" and data.data_root("rel").is_absolute()
    assert data.cache_root() == tmp_path / "cache"


# ---------------------------------------------------------------------------------------------- MNIST-like (IDX)
@pytest.mark.parametrize("name, tensors, load", [
    ("MNIST", data.mnist_tensors, data.load_mnist),
    ("FashionMNIST", data.fashion_mnist_tensors, data.load_fashion_mnist),
])
def test_idx_uncompressed_read_in_place(tmp_path, name, tensors, load):
    arrays = make_idx_root(tmp_path / "root", name, gz=False)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = tensors(split, tmp_path / "root", download=False)
        assert x.shape == (len(arrays[f"{prefix}-labels-idx1-ubyte"]), 1, 28, 28) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and y.tolist() == arrays[f"{prefix}-labels-idx1-ubyte"].tolist()
        assert torch.equal(x[:, 0], torch.from_numpy(arrays[f"{prefix}-images-idx3-ubyte"]).float() / 255)
        assert x.min() == 0 and x.max() == 1
    ds = load("test", tmp_path / "root", download=False)
    image, label = ds[1]
    assert len(ds) == N_TEST and image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert label.dtype == torch.int64 and int(label) == arrays["t10k-labels-idx1-ubyte"][1]
    assert torch.equal(image[0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"][1]).float() / 255)
    assert not (tmp_path / "cache").exists()  # nothing to prepare
    assert tensors("test", tmp_path / "root", download=False, limit=2)[0].shape == (2, 1, 28, 28)


@pytest.mark.parametrize("gz", [True, {"train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}], ids=["all", "mixed"])
def test_idx_gz_decompressed_into_cache_from_read_only_root(tmp_path, monkeypatch, gz):
    root = tmp_path / "root"
    arrays = make_idx_root(root, "MNIST", gz=gz)
    before = tree(root)
    set_read_only(root, True)
    try:
        x, y = data.mnist_tensors("train", root, download=False)
    finally:
        set_read_only(root, False)
    assert tree(root) == before  # nothing written into the data root
    assert y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert torch.equal(x[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]).float() / 255)
    cached = tmp_path / "cache" / "MNIST" / "raw"
    assert sorted(p.name for p in cached.iterdir()) == sorted(data.IDX_FILES)  # no temp files left behind
    assert (cached / "train-images-idx3-ubyte").stat().st_size == 16 + N_TRAIN * 28 * 28
    # Decompressed once: a second load must not unzip again.
    monkeypatch.setattr(data.gzip, "open", lambda *a, **k: pytest.fail("decompressed a second time"))
    x2, y2 = data.mnist_tensors("test", root, download=False)
    assert y2.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist() and x2.shape == (N_TEST, 1, 28, 28)


def test_idx_cache_replaced_when_root_holds_other_files(tmp_path):
    make_idx_root(tmp_path / "a", gz=True, seed=1, n_train=5)
    assert len(data.mnist_tensors("train", tmp_path / "a", download=False)[1]) == 5
    arrays = make_idx_root(tmp_path / "b", gz=True, seed=2, n_train=7)
    x, y = data.mnist_tensors("train", tmp_path / "b", download=False)
    assert y.tolist() == arrays["train-labels-idx1-ubyte"].tolist() and x.shape[0] == 7


def test_invalid_split_raises_value_error(tmp_path):
    make_idx_root(tmp_path / "root", gz=False)
    for call in (lambda: data.mnist_tensors("val", tmp_path / "root"), lambda: data.load_mnist("training"),
                 lambda: data.ColorMNIST("valid", tmp_path / "root"), lambda: data.CelebA("val", tmp_path)):
        with pytest.raises(ValueError, match="'train'.*'test'"):
            call()
    with pytest.raises(ValueError, match="limit"):
        data.mnist_tensors("test", tmp_path / "root", limit=-1)


def test_missing_file_without_download_names_file_and_absolute_folder(tmp_path, monkeypatch, isolated):
    make_idx_root(tmp_path / "fake", "FashionMNIST", gz=True,
                  skip=("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFoundError) as err:
        data.fashion_mnist_tensors("test", "fake", download=False)  # relative data dir
    msg = str(err.value)
    folder = f"{tmp_path / 'fake' / 'FashionMNIST' / 'raw'}{os.sep}"
    assert f"put train-images-idx3-ubyte.gz, t10k-images-idx3-ubyte.gz into {folder} " in msg
    assert "(found there: train-labels-idx1-ubyte.gz, t10k-labels-idx1-ubyte.gz)" in msg
    assert "\n" not in msg and "download" not in msg and "RVAE_DATA" in msg
    assert isolated == []  # no download attempted
    assert isinstance(err.value, RvaeError)


def test_missing_root_with_failing_download_is_quick_and_says_so(tmp_path, isolated):
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError) as err:
        data.load_mnist("train", tmp_path / "empty", download=True)
    assert time.monotonic() - start < 10
    msg = str(err.value)
    assert isolated, "torchvision's download was not tried"
    assert "put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, " in msg
    assert f"{tmp_path / 'empty' / 'MNIST' / 'raw'}{os.sep}" in msg and "(found there: none of them)" in msg
    assert "download failed (RuntimeError:" in msg and "offline" in msg and "\n" not in msg


def test_download_true_uses_files_torchvision_fetched(tmp_path, monkeypatch):
    arrays = fake_idx_arrays()

    def fake_download(url, download_root, filename=None, md5=None, **kw):
        stem = filename[: -len(".gz")]
        write_idx(Path(download_root) / stem, arrays[stem], gz=False)

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", fake_download)
    x, y = data.mnist_tensors("test", tmp_path / "root", download=True)
    assert y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist() and x.shape == (N_TEST, 1, 28, 28)


# ----------------------------------------------------------------------------------------------------- ColorMNIST
def test_colours_are_the_seven_nonblack_corners():
    corners = {c for c in itertools.product((0.0, 1.0), repeat=3)} - {(0.0, 0.0, 0.0)}
    assert data.COLOURS.shape == (7, 3) and {tuple(c) for c in data.COLOURS.tolist()} == corners
    named = dict(zip(data.COLOUR_NAMES, data.COLOURS.tolist()))
    assert named["red"] == [1, 0, 0] and named["cyan"] == [0, 1, 1] and named["white"] == [1, 1, 1]


def test_colour_mnist_images_are_grey_digit_times_colour(tmp_path):
    arrays = make_idx_root(tmp_path / "root", gz=False)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, digits, colours = data.colour_mnist_tensors(split, tmp_path / "root", download=False)
        grey = torch.from_numpy(arrays[f"{prefix}-images-idx3-ubyte"]).float() / 255
        assert x.shape == (len(grey), 3, 28, 28) and x.dtype == torch.float32
        assert digits.tolist() == arrays[f"{prefix}-labels-idx1-ubyte"].tolist()
        assert colours.dtype == torch.int64 and colours.min() >= 0 and colours.max() <= 6
        for i in range(len(grey)):
            for ch in range(3):
                assert torch.equal(x[i, ch], grey[i] * data.COLOURS[colours[i], ch])
        ds = data.ColorMNIST(split, tmp_path / "root", download=False)
        image, digit, colour = ds[3]
        assert torch.equal(image, x[3]) and int(digit) == digits[3] and int(colour) == colours[3]
    assert len(set(data.colour_mnist_tensors("train", tmp_path / "root")[2].tolist())) > 1


def test_colour_mnist_test_colours_fixed_train_colours_follow_epoch(tmp_path):
    make_idx_root(tmp_path / "root", gz=False)
    root = tmp_path / "root"
    test_a, test_b = data.ColorMNIST("test", root, seed=0), data.ColorMNIST("test", root, seed=7)
    test_b.set_epoch(3)
    assert torch.equal(test_a.colours, test_b.colours)
    assert torch.equal(data.colour_mnist_tensors("test", root, seed=5)[2], test_a.colours)

    train = data.ColorMNIST("train", root, seed=0)
    epoch0 = train.colours.clone()
    train.set_epoch(1)
    assert not torch.equal(train.colours, epoch0)  # 40 draws: equal with probability 7**-40
    again = data.ColorMNIST("train", root, seed=0)
    again.set_epoch(1)
    assert torch.equal(again.colours, train.colours)
    train.set_epoch(0)
    assert torch.equal(train.colours, epoch0)
    assert not torch.equal(data.ColorMNIST("train", root, seed=1).colours, epoch0)
    limited = data.colour_mnist_tensors("train", root, limit=10, epoch=1)[2]
    assert torch.equal(limited, again.colours[:10])


# --------------------------------------------------------------------------------------------------------- CelebA
LISTED = [f"{i:06d}.jpg" for i in range(1, 11)]  # rows of the attribute and partition files
ON_DISK = ["000001.jpg", "000002.jpg", "000004.jpg", "000005.jpg", "000007.jpg", "000010.jpg"]
PARTITION = {name: 0 if i < 6 else 1 if i < 8 else 2 for i, name in enumerate(LISTED)}  # 6 train, 2 valid, 2 test


def make_celeba(root: Path, seed: int = 0) -> np.ndarray:
    """Fake ``root/celeba`` like the real subset: list files for 10 names, JPEGs for 6 (+ unlisted files)."""
    rng = np.random.default_rng(seed)
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    signs = rng.choice([-1, 1], size=(len(LISTED), 40))
    rows = [f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(LISTED, signs)]  # "  1 -1 ..."
    text = "\r\n".join([str(len(LISTED)), " ".join(data.CELEBA_ATTRIBUTES) + " ", *rows]) + "\r\n"
    (folder / "list_attr_celeba.txt").write_bytes(text.encode())
    (folder / "list_eval_partition.txt").write_bytes(
        "".join(f"{n} {p}\r\n" for n, p in PARTITION.items()).encode())
    for name in ON_DISK + ["999999.jpg"]:  # the last one is not listed: ignored
        pixels = rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "img_align_celeba" / name, quality=95)
    (folder / "img_align_celeba" / "notes.txt").write_text("not an image")
    return signs


def test_celeba_uses_only_images_on_disk_and_maps_attributes(tmp_path):
    signs = make_celeba(tmp_path)
    ds = data.CelebA("all", tmp_path)
    assert ds.filenames == ON_DISK
    rows = [LISTED.index(n) for n in ON_DISK]
    assert ds.attributes.dtype == torch.int64 and ds.attributes.shape == (6, 40)
    assert torch.equal(ds.attributes, torch.from_numpy((signs[rows] == 1).astype(np.int64)))
    assert set(ds.attributes.unique().tolist()) == {0, 1}
    image, attrs = ds[2]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    assert torch.equal(attrs, ds.attributes[2])


def test_celeba_splits(tmp_path):
    make_celeba(tmp_path)
    assert data.CelebA("train", tmp_path).filenames == ["000001.jpg", "000002.jpg", "000004.jpg", "000005.jpg"]
    assert data.CelebA("valid", tmp_path).filenames == ["000007.jpg"]
    assert data.CelebA("test", tmp_path).filenames == ["000010.jpg"]
    assert data.CelebA("train", tmp_path, limit=2).filenames == ["000001.jpg", "000002.jpg"]


def test_celeba_image_is_centre_crop_resized(tmp_path):
    make_celeba(tmp_path)
    path = tmp_path / "celeba" / "img_align_celeba" / "000004.jpg"
    with Image.open(path) as im:  # 178x218: the 148x148 centre starts at (15, 35)
        expected = np.asarray(im.convert("RGB").crop((15, 35, 163, 183)).resize((64, 64), Image.BILINEAR))
    image = data.load_face(path)
    assert torch.allclose(image, torch.from_numpy(expected.copy()).permute(2, 0, 1).float() / 255, atol=1e-6)
    assert data.CelebA("all", tmp_path, crop=100, size=32)[0][0].shape == (3, 32, 32)


def test_celeba_tensors_match_dataset_and_parse_is_cached(tmp_path, monkeypatch):
    make_celeba(tmp_path)
    images, attrs = data.celeba_tensors("train", tmp_path, limit=3, progress=False)
    ds = data.CelebA("train", tmp_path)
    assert images.shape == (3, 3, 64, 64) and torch.equal(attrs, ds.attributes[:3])
    for i in range(3):
        assert torch.equal(images[i], ds[i][0])
    monkeypatch.setattr(data, "_parse_attributes", lambda path: pytest.fail("attribute file parsed twice"))
    assert len(data.CelebA("all", tmp_path)) == len(ON_DISK)


@pytest.mark.parametrize("remove", ["list_attr_celeba.txt", "list_eval_partition.txt", "img_align_celeba"])
def test_celeba_missing_file_or_folder_is_named(tmp_path, remove):
    make_celeba(tmp_path)
    target = tmp_path / "celeba" / remove
    if target.is_dir():
        for p in target.iterdir():
            p.unlink()
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(DatasetNotFoundError) as err:
        data.CelebA("train", tmp_path)
    msg = str(err.value)
    assert f"missing {remove}" in msg and f"in {tmp_path / 'celeba'}{os.sep};" in msg and "\n" not in msg
    assert "never downloaded" in msg
    assert data.describe_data(tmp_path)["CelebA"] == {"available": False, "reason": msg}


def test_celeba_without_listed_images_or_split_images_is_an_error(tmp_path):
    make_celeba(tmp_path)
    images = tmp_path / "celeba" / "img_align_celeba"
    (images / "000010.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="'test' split"):
        data.CelebA("test", tmp_path)
    for name in ON_DISK[:-1]:
        (images / name).unlink()
    with pytest.raises(DatasetNotFoundError, match=f"none of the images listed in list_attr_celeba.txt is in {images}"):
        data.CelebA("all", tmp_path)


def test_celeba_malformed_attribute_file(tmp_path):
    make_celeba(tmp_path)
    path = tmp_path / "celeba" / "list_attr_celeba.txt"
    path.write_text(path.read_text().replace(" -1", " 0", 1))
    with pytest.raises(RvaeError, match="-1 or 1"):
        data.CelebA("all", tmp_path)


# ------------------------------------------------------------------------------------------------- describe_data
def test_describe_data(tmp_path):
    make_idx_root(tmp_path, "MNIST", gz=True)
    make_idx_root(tmp_path, "FashionMNIST", gz=True, skip=("t10k-images-idx3-ubyte",))
    make_celeba(tmp_path)
    report = data.describe_data(tmp_path)
    assert set(report) == {"MNIST", "FashionMNIST", "ColorMNIST", "CelebA"}
    assert report["MNIST"] == report["ColorMNIST"] == report["CelebA"] == {"available": True, "reason": None}
    assert report["FashionMNIST"]["available"] is False
    assert "put t10k-images-idx3-ubyte.gz into" in report["FashionMNIST"]["reason"]
    empty = data.describe_data(tmp_path / "nothing")
    assert not any(entry["available"] for entry in empty.values())
    assert all(entry["reason"] and "\n" not in entry["reason"] for entry in empty.values())


def test_runnable_grey_datasets_keeps_the_order_and_says_why_the_others_cannot_run(tmp_path):
    arrays = make_idx_root(tmp_path, "MNIST", gz=True)
    make_idx_root(tmp_path, "FashionMNIST", gz=True, skip=("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"))
    runnable, not_run = data.runnable_grey_datasets(["fashion_mnist", "mnist"], tmp_path)
    assert runnable == ["mnist"] and list(not_run) == ["fashion_mnist"]
    assert "train-images-idx3-ubyte.gz, t10k-images-idx3-ubyte.gz" in not_run["fashion_mnist"]
    images, labels = data.grey_tensors("mnist", "test", tmp_path, download=False, limit=3)
    assert images.shape == (3, 1, 28, 28) and labels.tolist() == arrays["t10k-labels-idx1-ubyte"][:3].tolist()
    with pytest.raises(DatasetNotFoundError, match="none of the datasets"):
        data.runnable_grey_datasets(["fashion_mnist"], tmp_path)
    with pytest.raises(ParameterError, match="unknown dataset.*valid: mnist, fashion_mnist"):
        data.runnable_grey_datasets(["mnist", "cifar10"], tmp_path)
    with pytest.raises(ParameterError, match="unknown dataset"):
        data.grey_tensors("kmnist", "test", tmp_path)


# ------------------------------------------------------------------------------------------------------ real data
def _real_root() -> Path | None:
    for candidate in (Path(__file__).resolve().parents[1] / "shared" / "data", Path("/work/shared/data")):
        if candidate.is_dir():
            return candidate
    return None


REAL = _real_root()
needs_real = pytest.mark.skipif(REAL is None, reason="real data (shared/data) not present")


@needs_real
def test_real_mnist_first_test_images():
    if not (REAL / "MNIST" / "raw").is_dir():
        pytest.skip("no real MNIST")
    x, y = data.mnist_tensors("test", REAL, download=False, limit=16)
    assert x.shape == (16, 1, 28, 28) and y[:5].tolist() == [7, 2, 1, 0, 4]
    assert x.min() == 0 and x.max() == 1


@needs_real
def test_real_celeba_test_images():
    if not (REAL / "celeba").is_dir():
        pytest.skip("no real CelebA")
    images, attrs = data.celeba_tensors("test", REAL, limit=4, progress=False)
    assert images.shape == (4, 3, 64, 64) and attrs.shape == (4, 40)
    assert 0 <= images.min() < images.max() <= 1 and set(attrs.unique().tolist()) <= {0, 1}
    header = (REAL / "celeba" / "list_attr_celeba.txt").open().readlines()[1].split()
    assert header == data.CELEBA_ATTRIBUTES


@needs_real
def test_real_files_are_recognised_by_their_md5s():
    mnist = data.idx_provenance("MNIST", REAL)
    assert mnist["official"] and mnist["differing"] == [] and "official train/test split" in mnist["description"]
    fashion = data.idx_provenance("FashionMNIST", REAL)
    if not (REAL / "FashionMNIST" / "raw").is_dir():
        pytest.skip("no real FashionMNIST")
    # the shared copy: official labels, real images in a non-official split (see its SOURCES.md)
    assert not fashion["official"]
    assert fashion["differing"] == ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte"]
    assert "not the official one" in fashion["description"]


def test_official_files_are_told_apart_by_md5(tmp_path, monkeypatch):
    make_idx_root(tmp_path, "MNIST", gz=True)
    raw = tmp_path / "MNIST" / "raw"
    md5s = {name: data.file_md5(raw / f"{name}.gz") for name in data.IDX_FILES}
    monkeypatch.setitem(data.OFFICIAL_MD5, "MNIST", {name: (md5, None) for name, md5 in md5s.items()})
    recognised = data.idx_provenance("MNIST", tmp_path)
    assert recognised["official"] and recognised["files"] == {f"{n}.gz": m for n, m in md5s.items()}
    with gzip.open(raw / "t10k-labels-idx1-ubyte.gz", "ab") as stream:      # one changed byte stream
        stream.write(b"\0")
    changed = data.idx_provenance("MNIST", tmp_path)
    assert not changed["official"] and changed["differing"] == ["t10k-labels-idx1-ubyte"]
    assert "NOT the official files" in changed["description"]
    with pytest.raises(ValueError, match="no official MD5s are known for 'CIFAR'"):
        data.idx_provenance("CIFAR", tmp_path)


def test_loading_records_the_provenance_of_each_dataset_read(tmp_path, monkeypatch):
    make_idx_root(tmp_path, "MNIST", gz=False)
    monkeypatch.setattr(data, "_USED", {})
    assert data.used_datasets() == {}
    data.mnist_tensors("test", tmp_path, download=False, limit=2)
    used = data.used_datasets()
    assert list(used) == ["MNIST"] and used["MNIST"]["official"] is False   # fake files are not the official ones

"""The training stream's tar reader against WebDataset's, on shards the writer makes and on
tars of other writers; broken shards are refused or skipped with a warning."""

from __future__ import annotations

import io
import tarfile

import pytest
import torch
import webdataset as wds

from conftest import write_synthetic_shards
from vitrepro.data.shards.datamodule import ShardsDataModule
from vitrepro.data.shards.tar_headers import TarFormatError, shard_samples


def _webdataset_samples(path) -> list[dict]:
    return list(wds.tarfile_to_samples()([{"url": str(path)}]))


def _payload(sample: dict) -> dict:
    return {k: v for k, v in sample.items() if not k.startswith("__")}


def _tar(path, members: dict[str, bytes], form: int = tarfile.PAX_FORMAT) -> None:
    with tarfile.open(path, "w", format=form) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1.5  # a fractional mtime: a PAX header each
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_synthetic_shards(tmp_path_factory.mktemp("tar_reader"), 30, 10, 10)


def test_reads_the_writers_shards_as_webdataset_does(shards):
    for path in sorted((shards / "train").glob("*.tar")):
        ours, theirs = list(shard_samples(path)), _webdataset_samples(path)
        assert len(ours) == 10
        assert [s["__key__"] for s in ours] == [s["__key__"] for s in theirs]
        for a, b in zip(ours, theirs, strict=True):
            assert _payload(a) == _payload(b) and set(_payload(a)) == {"png", "cls"}
        with tarfile.open(path) as tar:  # plain ustar: one header a member, none of PAX
            assert all(not member.pax_headers for member in tar.getmembers())


def test_reads_pax_headers_long_names_and_folders_as_webdataset_does(tmp_path):
    folder = "a/" + "long.folder-" * 12  # a path over ustar's 100 bytes: PAX carries it
    members = {f"{folder}/0001.jpg": b"x" * 700, f"{folder}/0001.cls": b"3", "b/0002.JPG": b""}
    _tar(tmp_path / "pax.tar", members)
    ours = list(shard_samples(tmp_path / "pax.tar"))
    theirs = _webdataset_samples(tmp_path / "pax.tar")
    assert [_payload(s) for s in ours] == [_payload(s) for s in theirs]
    assert [s["__key__"] for s in ours] == [s["__key__"] for s in theirs]
    assert ours[0]["__key__"] == f"{folder}/0001" and ours[0]["jpg"] == b"x" * 700
    assert ours[1] == {"__key__": "b/0002", "__url__": str(tmp_path / "pax.tar"), "jpg": b""}


def test_broken_tars_are_refused_with_the_file_named(tmp_path):
    _tar(tmp_path / "good.tar", {"0001.jpg": b"y" * 600}, tarfile.USTAR_FORMAT)
    whole = (tmp_path / "good.tar").read_bytes()
    (tmp_path / "truncated.tar").write_bytes(whole[:700])
    (tmp_path / "cut.tar").write_bytes(whole[:1536] + b"\1" * 100)  # after the first member
    (tmp_path / "checksum.tar").write_bytes(whole[:10] + b"Z" + whole[11:])
    with tarfile.open(tmp_path / "link.tar", "w") as tar:
        link = tarfile.TarInfo("0001.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "elsewhere.jpg"
        tar.addfile(link)
    # a header whose size field is not octal, with its checksum made right
    bad = bytearray(whole[:512])
    bad[124:136], bad[148:156] = b"99999999999\0", b" " * 8
    bad[148:156] = f"{sum(bad):06o}\0 ".encode()
    (tmp_path / "number.tar").write_bytes(bytes(bad) + whole[512:])
    for name, reason in [
        ("number", "unreadable tar header"),
        ("truncated", "truncated member"),
        ("cut", "truncated header"),
        ("checksum", "bad tar header checksum"),
        ("link", "not supported"),
    ]:
        with pytest.raises(TarFormatError, match=f"{name}.tar: .*{reason}"):
            list(shard_samples(tmp_path / f"{name}.tar"))


def test_the_training_stream_skips_an_unreadable_shard_with_a_warning(tmp_path):
    root = write_synthetic_shards(tmp_path, 40, 10, 10)
    broken = root / "train" / "shard-000001.tar"
    broken.write_bytes(broken.read_bytes()[:1500])
    torch.manual_seed(3)
    module = ShardsDataModule(
        name="s", root=str(root), num_classes=10, image_size=16, batch_size=8, num_workers=0
    )
    with pytest.warns(UserWarning, match="skipped the rest of shard .*shard-000001.tar"):
        samples = module.train_dataloader().dataset.ordered_samples(0, 0)
        keys = [int(next(samples)["__key__"]) for _ in range(60)]
    assert {key // 10 for key in keys} <= {0, 1, 2, 3}
    assert {key // 10 for key in keys} >= {0, 2, 3}

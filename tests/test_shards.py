"""WebDataset shards: writer, manifest, resume, nested subsets, worker and rank splits, training."""

from __future__ import annotations

import json
import tarfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_VIT, few_steps, run_script, write_synthetic_shards
from vitrepro.data.shards.datamodule import ShardsDataModule
from vitrepro.data.shards.write import image_folder_samples, synthetic_samples, write_shards


def write_tree_with_bad_files(root, classes=3, per_class=6):
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, size=(20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
    (root / "class_0" / "corrupt.jpg").write_bytes(b"not a jpeg at all")
    whole = (root / "class_1" / "0.jpg").read_bytes()
    (root / "class_1" / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    return classes * per_class


def keys_and_labels(shard):
    with tarfile.open(shard) as tar:
        return sorted(m.name.split(".")[0] for m in tar.getmembers() if m.name.endswith(".cls"))


def test_writer_skips_bad_images_and_writes_a_manifest(tmp_path):
    good = write_tree_with_bad_files(tmp_path / "src")
    samples, classes = image_folder_samples(tmp_path / "src")
    manifest = write_shards(samples, classes, tmp_path / "out", shard_size=5, progress=False)
    assert manifest["num_samples"] == good and manifest["num_classes"] == 3
    assert sorted(s["source"].rsplit("/", 1)[1] for s in manifest["skipped"]) == [
        "corrupt.jpg",
        "truncated.jpg",
    ]
    assert sum(s["count"] for s in manifest["shards"]) == good
    assert json.loads((tmp_path / "out" / "dataset.json").read_text()) == manifest
    # keys are positions in the seeded order: shard k holds positions [5k, 5k + 5)
    for shard in manifest["shards"]:
        for key in keys_and_labels(tmp_path / "out" / shard["name"]):
            assert shard["first"] <= int(key) < shard["first"] + 5


def test_rerun_completes_a_partial_write_without_duplicates(tmp_path):
    write_tree_with_bad_files(tmp_path / "src")
    samples, classes = image_folder_samples(tmp_path / "src")
    full = write_shards(samples, classes, tmp_path / "full", shard_size=4, progress=False)
    partial = tmp_path / "partial"
    write_shards(samples, classes, partial, shard_size=4, progress=False)
    # a killed writer: the last two shards and the manifest never made it, a temp file did
    for shard in full["shards"][-2:]:
        (partial / shard["name"]).unlink()
    (partial / "dataset.json").unlink()
    (partial / f".{full['shards'][-1]['name']}.tmp").write_bytes(b"half a shard")
    resumed = write_shards(samples, classes, partial, shard_size=4, progress=False)
    assert resumed["num_samples"] == full["num_samples"]
    assert sorted(s["source"] for s in resumed["skipped"]) == sorted(
        s["source"] for s in full["skipped"]
    )
    for shard in full["shards"]:
        assert keys_and_labels(partial / shard["name"]) == keys_and_labels(
            tmp_path / "full" / shard["name"]
        )


def _module(root, **kwargs):
    kwargs.setdefault("num_workers", 0)
    return ShardsDataModule(
        name="s", root=str(root), num_classes=10, image_size=16, batch_size=8, **kwargs
    )


@pytest.fixture(scope="module")
def synthetic_shards(tmp_path_factory):
    return write_synthetic_shards(tmp_path_factory.mktemp("synthetic_shards"), 60, 40, 10)


def test_nested_subsets_open_only_their_shards(synthetic_shards):
    small, large = _module(synthetic_shards, subset=25), _module(synthetic_shards, subset=45)
    small_urls, large_urls = small._urls("train", 25), large._urls("train", 45)
    assert len(small_urls) == 3 and len(large_urls) == 5
    assert set(small_urls) < set(large_urls)
    assert small.num_train_samples == 25
    images, _ = next(iter(small.train_dataloader()))
    assert images.shape == (8, 3, 16, 16)


@pytest.mark.parametrize("workers", [0, 2])
def test_validation_sees_every_sample_once(synthetic_shards, workers):
    dm = _module(synthetic_shards, num_workers=workers)
    labels = [label for _, batch in dm.val_dataloader() for label in batch.tolist()]
    expected = np.arange(40) % 10  # the synthetic labels cycle through the classes
    assert sorted(labels) == sorted(expected.tolist())


def test_validation_is_split_across_two_ranks(synthetic_shards, monkeypatch):
    seen = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        dm = _module(synthetic_shards)
        seen.append(sum(len(batch) for _, batch in dm.val_dataloader()))
    assert seen == [20, 20]  # 4 shards of 10: two each, every sample once


def test_fewshot_pool_is_the_first_examples_of_each_class_in_shard_order(synthetic_shards):
    pool, test = _module(synthetic_shards).evaluation_sets(per_class=2)
    pool_labels = [label for _, label in pool]
    assert sorted(pool_labels) == sorted(list(range(10)) * 2)
    # the synthetic labels cycle through the classes: the first 20 positions hold two of each
    assert len(pool_labels) == 20 and all(image.shape == (3, 16, 16) for image, _ in pool)
    assert sum(1 for _ in test) == 40  # the whole validation split


def test_train_reads_shards_end_to_end_with_fewshot_from_shards(synthetic_shards, tmp_path):
    target = f"{{format:shards,name:shards,root:'{synthetic_shards}',num_classes:10,image_size:16}}"
    result = run_script(
        "train.py",
        "data=synthetic_shards",
        f"paths.data_root={synthetic_shards.parent}",
        f"data.root={synthetic_shards}",
        "data.image_size=16",
        "data.subset=40",
        f"+data.fewshot_datasets.shards={target}",
        *TINY_VIT,
        *few_steps(8, 6),
        "evaluation=fewshot",
        "evaluation.shots=[1,2]",
        "evaluation.seeds=2",
        output_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary()
    assert summary["global_steps"] == 6 and 0 <= summary["final"]["val/top1"] <= 1
    assert 0 <= summary["fewshot"]["fewshot/shards/2shot"] <= 1


def test_make_shards_command_and_missing_source(tmp_path):
    write_tree_with_bad_files(tmp_path / "src")
    ok = run_script(
        "make_shards.py",
        str(tmp_path / "src"),
        str(tmp_path / "out"),
        "--shard-size",
        "8",
        output_dir=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert "18 samples, 3 classes in 3 shards" in ok.stdout and "2 skipped" in ok.stdout
    missing = run_script("make_shards.py", "/nonexistent", str(tmp_path / "x"), output_dir=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: SRC=/nonexistent")


def _shards_with_bad_members(root):
    """Val shards holding one undecodable image, one sample without a label and, in a second
    shard, a truncated tar."""
    import webdataset as wds

    samples, classes = synthetic_samples(20, "val", image_size=16)
    write_shards(samples, classes, root / "train", shard_size=10, progress=False)
    write_shards(samples, classes, root / "val", shard_size=10, progress=False)
    shard = root / "val" / "shard-000000.tar"
    good = root / "val" / "good.tar"
    shard.rename(good)
    with wds.TarWriter(str(shard)) as sink:
        for sample in wds.WebDataset(str(good), shardshuffle=False):
            if sample["__key__"].endswith("3"):
                sample = {**sample, "png": b"garbage"}
            if sample["__key__"].endswith("5"):
                sample = {k: v for k, v in sample.items() if k != "cls"}
            sink.write(sample)
    good.unlink()
    second = root / "val" / "shard-000001.tar"
    second.write_bytes(second.read_bytes()[:-3000])  # cut inside the last members


def test_corrupt_samples_are_skipped_and_counted(tmp_path):
    _shards_with_bad_members(tmp_path)
    dm = _module(tmp_path, max_corrupt_fraction=0.5)
    with pytest.warns(UserWarning, match="skipped a corrupt sample") as caught:
        seen = sum(len(batch) for _, batch in dm.val_dataloader())
    assert 10 <= seen < 19  # the bad image, the unlabelled sample, the truncated members: gone
    messages = " ".join(str(w.message) for w in caught)
    assert "cannot identify image" in messages and "cls" in messages


def test_too_many_corrupt_samples_stop_the_run(tmp_path):
    _shards_with_bad_members(tmp_path)
    dm = _module(tmp_path, max_corrupt_fraction=0.0)
    with pytest.raises(RuntimeError, match=r"data\.max_corrupt_fraction=0\.0"):
        for _ in dm.val_dataloader():
            pass


@pytest.mark.parametrize(
    "text,count", [("9M", 9_000_000), ("300M", 300_000_000), ("50k", 50_000), ("1234", 1234)]
)
def test_subset_sizes_parse(text, count):
    from vitrepro.data.shards.datamodule import parse_count

    assert parse_count(text) == count


def test_jft_like_config_reads_classes_and_a_subset_from_the_shards(synthetic_shards, tmp_path):
    data_root = tmp_path / "datasets"
    data_root.mkdir()
    (data_root / "jft_like").symlink_to(synthetic_shards)
    result = run_script(
        "train.py",
        "data=jft_like",
        f"paths.data_root={data_root}",
        "data.image_size=16",
        "data.subset=30",
        "data.num_workers=0",
        *TINY_VIT,
        *few_steps(8, 3),
        output_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.summary()["config"]["data"]["subset"] == 30


def _keys(module, stream: int = 0, epoch: int = 0, count: int = 120) -> list[int]:
    samples = module.train_dataloader().dataset.ordered_samples(stream, epoch)
    return [int(next(samples)["__key__"]) for _ in range(count)]


def test_training_order_is_a_function_of_seed_epoch_rank_and_worker(synthetic_shards):
    torch.manual_seed(7)  # the run's seed, as seed_everything sets it
    first = _keys(_module(synthetic_shards))
    torch.manual_seed(7)
    assert _keys(_module(synthetic_shards)) == first  # two runs, one order
    torch.manual_seed(7)
    module = _module(synthetic_shards)
    assert _keys(module, stream=1) != first and _keys(module, epoch=1) != first
    torch.manual_seed(8)
    assert _keys(_module(synthetic_shards)) != first
    assert set(first) <= set(range(60)) and len(set(first)) > 40  # resampled, then shuffled


def test_a_nested_subset_trains_on_a_prefix_of_the_seeded_order(synthetic_shards):
    torch.manual_seed(7)
    keys = _keys(_module(synthetic_shards, subset=25))
    assert max(keys) < 25 and len(set(keys)) > 20  # keys are positions in the seeded order


@pytest.mark.parametrize("workers", [1, 2])
def test_ranks_and_workers_train_on_disjoint_shards(synthetic_shards, workers):
    """6 training shards of 10 on 2 ranks: each rank (and with 2 workers each worker stream)
    resamples only its own shards, so no sample is trained on by two ranks."""
    keys = {}
    for rank in (0, 1):
        torch.manual_seed(7)
        module = _module(synthetic_shards, num_workers=workers)
        module.trainer = SimpleNamespace(
            global_rank=rank, world_size=2, current_epoch=0, accelerator=None
        )
        for stream in range(workers):
            keys[rank, stream] = set(_keys(module, stream=stream))
    shards = {part: {key // 10 for key in found} for part, found in keys.items()}
    for a in keys:
        for b in keys:
            if a != b:
                assert not keys[a] & keys[b] and not shards[a] & shards[b]
    assert set().union(*shards.values()) <= set(range(6))
    assert sum(len(s) for s in shards.values()) >= 4  # every part draws from its own shards

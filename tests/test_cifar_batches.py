"""CIFAR's python batches read by the restricted unpickler: torchvision's arrays on the same
files, and nothing but an array's parts let through."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from torchvision import datasets

from cifar_files import write_fake_cifar
from malicious_files import write_cifar_batch
from vitrepro.config.errors import ConfigError
from vitrepro.data.cifar import CIFAR_READERS
from vitrepro.data.cifar_batches import read_batch

TORCHVISION = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}


def torchvision_reader(variant: str, folder: Path) -> type:
    """torchvision's own reader, unchanged but for the checksums of the generated files."""
    base = TORCHVISION[variant]

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    checksums = {
        "train_list": [[name, md5(name)] for name, _ in base.train_list],
        "test_list": [[name, md5(name)] for name, _ in base.test_list],
        "meta": {**base.meta, "md5": md5(base.meta["filename"])},
    }
    return type(f"Checked{base.__name__}", (base,), checksums)


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
def test_the_restricted_reader_gives_torchvisions_arrays(tmp_path, variant, protocol):
    folder = write_fake_cifar(tmp_path, variant, per_file=5, protocol=protocol)
    for train in (True, False):
        ours = CIFAR_READERS[variant](str(tmp_path), train=train)
        theirs = torchvision_reader(variant, folder)(str(tmp_path), train=train)
        assert ours.data.dtype == theirs.data.dtype == np.uint8
        np.testing.assert_array_equal(ours.data, theirs.data)
        assert ours.targets == theirs.targets and ours.classes == theirs.classes
        assert len(ours) == len(theirs) == (25 if train and variant == "cifar10" else 5)
        assert np.array_equal(np.asarray(ours[3][0]), np.asarray(theirs[3][0]))


def _refused(path: Path) -> str:
    with pytest.raises(ConfigError) as raised:
        read_batch(path)
    line = str(raised.value)
    assert line.startswith(f"data.root={path}: ") and "\n" not in line
    return line


@pytest.mark.parametrize(
    "call", [(os.mkdir, None), (eval, "0"), (np.load, None)], ids=["mkdir", "eval", "np.load"]
)
def test_a_batch_naming_any_other_callable_is_refused_and_nothing_runs(tmp_path, call):
    marker = tmp_path / "payload-ran"
    function, argument = call
    batch = tmp_path / "data_batch_1"
    if function is os.mkdir:
        write_cifar_batch(batch, marker)
    else:  # a harmless call of a callable outside the allowed set, NumPy's included

        class Call:
            def __reduce__(self) -> tuple:
                return (function, (argument if argument else str(marker),))

        batch.write_bytes(pickle.dumps({"data": Call(), "labels": [0]}))
    line = _refused(batch)
    name = {os.mkdir: "posix.mkdir", eval: "builtins.eval", np.load: "numpy.load"}[function]
    assert f"holds a Python object of type {name}: not loaded" in line
    assert not marker.exists()


def test_an_array_of_python_objects_is_refused(tmp_path):
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.dumps({"data": np.array([1, "a"], dtype=object), "labels": [0]}))
    assert "'data' is an array of objects" in _refused(batch)


def test_a_batch_that_is_not_a_dict_is_refused(tmp_path):
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.dumps([np.zeros(3, dtype=np.uint8)]))
    assert "not a CIFAR batch file (not a dict)" in _refused(batch)

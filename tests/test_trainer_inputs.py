"""as_device_data: data already on the device is taken as it is (a sweep's runs share one build)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrdecay.trainer.inputs import DeviceData, as_device_data


def test_device_data_is_shared_not_copied_or_rehashed(monkeypatch):
    rng = np.random.default_rng(0)
    ds = {"x": rng.normal(size=(50, 6)).astype(np.float32), "y": rng.integers(0, 3, 50), "group": np.arange(50) % 2}
    a = as_device_data(ds, "cpu", name="first")
    import hashlib

    def no_hash(*args, **kw):
        raise AssertionError("hashed again")

    monkeypatch.setattr(hashlib, "sha1", no_hash)
    b = as_device_data(a, "cpu", name="second")
    assert isinstance(b, DeviceData) and b is not a and b.name == "second"
    assert b.x.data_ptr() == a.x.data_ptr() and b.fingerprint == a.fingerprint
    b.x = torch.zeros(1)  # a shallow copy: replacing a tensor of one leaves the other alone
    assert a.x.shape == (50, 6)


def test_device_data_with_other_classes_is_revalidated():
    a = as_device_data({"x": np.zeros((4, 2), np.float32), "y": np.array([0, 1, 2, 0])}, "cpu")
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        as_device_data(a, "cpu", n_classes=2)

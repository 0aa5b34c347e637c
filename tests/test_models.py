"""Models: shapes, the features/head split, BatchNorm placement, ResNet parameter counts."""

import pytest
import torch
from torch import nn

from lrdecay.models import MLP, CifarResNet, default_image_shape, make_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("act", ["relu", "gelu", "tanh", "silu"])
def test_mlp_structure_and_forward(batchnorm, act):
    torch.manual_seed(0)
    m = MLP(7, 3, width=5, depth=3, activation=act, batchnorm=batchnorm)
    linears = [l for l in m.body if isinstance(l, nn.Linear)]
    bns = [l for l in m.body if isinstance(l, nn.BatchNorm1d)]
    assert [(l.in_features, l.out_features) for l in linears] == [(7, 5), (5, 5), (5, 5)]
    assert len(bns) == (3 if batchnorm else 0)
    if batchnorm:  # BN right after each hidden linear layer, before the activation
        kinds = [type(l) for l in m.body]
        for i, k in enumerate(kinds):
            if k is nn.Linear:
                assert kinds[i + 1] is nn.BatchNorm1d
    x = torch.randn(11, 7)
    out = m(x)
    assert out.shape == (11, 3)
    torch.testing.assert_close(out, m.head(m.features(x)), rtol=0, atol=0)
    # a reference forward written out by hand
    h = x
    for layer in m.body:
        h = layer(h)
    torch.testing.assert_close(out, h @ m.head.weight.T + m.head.bias)


def _resnet_param_count(n_blocks_per_stage, n_classes, c_in=3, w=16):
    # independent closed form: stem conv + BN, two 3x3 convs + two BNs per block, linear head
    total = c_in * w * 9 + 2 * w
    c = w
    for c_out in (w, 2 * w, 4 * w):
        for _ in range(n_blocks_per_stage):
            total += c * c_out * 9 + 2 * c_out + c_out * c_out * 9 + 2 * c_out
            c = c_out
    return total + c * n_classes + n_classes


@pytest.mark.parametrize("name,n", [("resnet20", 3), ("resnet56", 9)])
def test_resnet_shapes_and_counts(name, n):
    m = make_model(name, in_features=3 * 32 * 32, n_classes=10)
    params = list(m.parameters())
    assert sum(p.numel() for p in params) == _resnet_param_count(n, 10)
    assert len(params) == 2 + 6 * 3 * n + 1 + 2  # stem conv, stem BN (2), blocks, head (2)
    if name == "resnet56":
        assert len(params) == 167 and abs(sum(p.numel() for p in params) - 0.85e6) < 0.01e6
        return  # the forward below is the same code; keep the test fast
    x = torch.randn(3, 3 * 32 * 32)
    out = m(x)
    assert out.shape == (3, 10)
    torch.testing.assert_close(out, m(x.view(3, 3, 32, 32)), rtol=0, atol=0)
    assert m.features(x).shape == (3, 64)


def test_resnet_on_flat_pattern_input():
    m = make_model("resnet20", in_features=128, n_classes=4)
    assert m.input_shape == (2, 8, 8)
    assert m(torch.randn(5, 128)).shape == (5, 4)


@pytest.mark.parametrize("d,shape", [(3072, (3, 32, 32)), (128, (2, 8, 8)), (512, (2, 16, 16)), (7, (7, 1, 1)), (12, (3, 2, 2))])
def test_default_image_shape(d, shape):
    assert default_image_shape(d) == shape


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(name="vgg"), ValueError, "model must be one of"),
        (dict(name="mlp", width=0), ValueError, "width"),
        (dict(name="mlp", depth=-1), ValueError, "depth"),
        (dict(name="mlp", activation="swish"), ValueError, "activation"),
        (dict(name="mlp", n_classes=1), ValueError, "n_classes"),
        (dict(name="mlp", in_features=2.5), TypeError, "in_features"),
        (dict(name="resnet20", input_shape=(3, 4, 4)), ValueError, "input_shape"),
    ],
)
def test_make_model_bad_input(kwargs, exc, match):
    args = dict(in_features=12, n_classes=3) | kwargs
    with pytest.raises(exc, match=match):
        make_model(args.pop("name"), **args)


def test_resnet_bad_depth():
    with pytest.raises(ValueError, match="6n\\+2"):
        CifarResNet(21, 10)


def _resnet18_param_count(n_classes, c_in=3, w=64):
    # independent closed form: stem conv + BN; per block two 3x3 convs + BNs, a 1x1 conv + BN projection
    # where the shape changes; linear head
    total = c_in * w * 9 + 2 * w
    c = w
    for stage in range(4):
        c_out = w * 2**stage
        for i in range(2):
            total += c * c_out * 9 + 2 * c_out + c_out * c_out * 9 + 2 * c_out
            if c != c_out or (stage > 0 and i == 0):
                total += c * c_out + 2 * c_out
            c = c_out
    return total + c * n_classes + n_classes


def test_resnet18_shapes_and_counts():
    m = make_model("resnet18", in_features=3 * 32 * 32, n_classes=10)
    n = sum(p.numel() for p in m.parameters())
    assert n == _resnet18_param_count(10) == 11_173_962  # the usual CIFAR ResNet-18 size
    assert len(list(m.parameters())) == 62
    small = make_model("resnet18", in_features=64, n_classes=7, width=4, input_shape=(1, 8, 8))
    assert sum(p.numel() for p in small.parameters()) == _resnet18_param_count(7, c_in=1, w=4)
    torch.manual_seed(0)
    x = torch.randn(5, 1, 8, 8)
    out = small(x)
    assert out.shape == (5, 7)
    torch.testing.assert_close(out, small.head(small.features(x)), rtol=0, atol=0)
    torch.testing.assert_close(small(x.reshape(5, 64)), out, rtol=0, atol=0)  # flat inputs reshaped
    assert small.features(x).shape == (5, 32)
    # stride-2 stages: 8 -> 8 -> 4 -> 2 -> 1 spatially; odd sizes work too (global pooling)
    odd = make_model("resnet18", in_features=3 * 9 * 7, n_classes=3, width=2, input_shape=(3, 9, 7))
    assert odd(torch.randn(2, 3, 9, 7)).shape == (2, 3)


def test_resnets_accept_channels_last_inputs():
    torch.manual_seed(0)
    for name in ("resnet20", "resnet18"):
        m = make_model(name, in_features=3 * 16 * 16, n_classes=4, width=4, input_shape=(3, 16, 16)).eval()
        x = torch.randn(3, 3, 16, 16)
        ref = m(x)
        m_cl = m.to(memory_format=torch.channels_last)
        torch.testing.assert_close(m_cl(x.contiguous(memory_format=torch.channels_last)), ref, rtol=1e-5, atol=1e-5)

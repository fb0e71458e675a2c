"""The polyphase dilated depth-wise convolution is the plain dilated convolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from simvp_model.polyphase import PolyphaseDepthwiseConv2d


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize(
    ("kernel", "dilation", "size"),
    [(7, 3, (16, 16)), (7, 3, (13, 20)), (5, 2, (9, 7)), (3, 4, (5, 6))],
)
def test_equals_the_dilated_convolution_forward_and_backward(channels_last, kernel, dilation, size):
    torch.manual_seed(0)
    conv = PolyphaseDepthwiseConv2d(6, kernel, dilation)
    x = torch.randn(3, 6, *size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    pad = dilation * (kernel // 2)
    expected = F.conv2d(x, conv.weight, conv.bias, padding=pad, dilation=dilation, groups=6)
    got = conv(x)
    assert got.shape == expected.shape == x.shape
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert got.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    grad_out = torch.randn_like(expected)
    want = torch.autograd.grad(expected, [x, conv.weight, conv.bias], grad_out)
    have = torch.autograd.grad(got, [x, conv.weight, conv.bias], grad_out)
    for w, h in zip(want, have, strict=True):
        torch.testing.assert_close(h, w, rtol=1e-4, atol=1e-4)


def test_is_a_drop_in_conv2d_with_the_same_state_dict():
    plain = nn.Conv2d(4, 4, 7, padding=9, dilation=3, groups=4)
    poly = PolyphaseDepthwiseConv2d(4, 7, 3)
    assert poly.state_dict().keys() == plain.state_dict().keys()
    poly.load_state_dict(plain.state_dict())
    x = torch.randn(2, 4, 11, 11)
    torch.testing.assert_close(poly(x), plain(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("kernel", "dilation"), [(4, 3), (7, 0)])
def test_rejects_an_even_kernel_or_a_dilation_below_one(kernel, dilation):
    with pytest.raises(ValueError, match="kernel_size|dilation"):
        PolyphaseDepthwiseConv2d(4, kernel, dilation)

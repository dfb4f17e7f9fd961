"""The torch adapter: bit-identity with the numpy golden path, the layer swap, the magnitude mask."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from finescale import golden  # noqa: E402
from finescale.golden.fakequant import (  # noqa: E402
    FakeQuantLinear, IntervalMask, TensorQuantizer, fake_quantize, fake_quantized)

RECIPES = ["paper-e4m3", "paper-e4m3-pz", "paper-e4m3-4o6", "paper-e4m3-h", "paper-ue5m3",
           "nvfp4", "mxfp4"]


def bits(a):
    return np.asarray(a, np.float32).view(np.uint32)


def sample(shape, sigma, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * sigma).astype(np.float32)


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("block_size", [4, 32])
@pytest.mark.parametrize("sigma", [0.0008, 0.005, 0.05])
def test_fake_quantize_is_the_numpy_path(recipe, block_size, sigma):
    x = sample((8, 64), sigma)
    want = golden.quantize(x, recipe=recipe, block_size=block_size).dequantize()
    got = fake_quantize(torch.from_numpy(x), recipe=recipe, block_size=block_size)
    assert got.dtype == torch.float32
    np.testing.assert_array_equal(bits(got.numpy()), bits(want))


def test_fake_quantize_keeps_dtype_and_input():
    x = torch.from_numpy(sample((4, 32), 0.01)).to(torch.bfloat16)
    before = x.clone()
    y = fake_quantize(x, recipe="nvfp4")
    assert y.dtype == torch.bfloat16 and torch.equal(x, before)
    want = golden.quantize(x.float().numpy(), recipe="nvfp4").dequantize()
    assert torch.equal(y, torch.from_numpy(want).to(torch.bfloat16))


def test_bad_inputs_are_named():
    with pytest.raises(TypeError, match="torch.Tensor"):
        fake_quantize(np.zeros(4, np.float32), recipe="nvfp4")
    with pytest.raises(TypeError, match="floating-point"):
        fake_quantize(torch.zeros(4, dtype=torch.int32), recipe="nvfp4")
    with pytest.raises(ValueError, match="unknown recipe"):
        TensorQuantizer(recipe="nope")
    with pytest.raises(TypeError, match="unknown quantize option"):
        TensorQuantizer(recipe="nvfp4", blocksize=4)
    with pytest.raises(ValueError, match="lo < hi"):
        IntervalMask(0.1, 0.1)


class MLP(nn.Module):
    def __init__(self, d=32, h=64):
        super().__init__()
        self.gate_proj, self.up_proj = nn.Linear(d, h, bias=False), nn.Linear(d, h, bias=False)
        self.down_proj = nn.Linear(h, d, bias=True)

    def forward(self, x):
        return self.down_proj(torch.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class Tiny(nn.Module):
    """A plain stand-in for a Llama-style decoder: MLPs plus a linear that must stay untouched."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList([MLP(), MLP()])
        self.head = nn.Linear(32, 16)

    def forward(self, x):
        for layer in self.layers:
            x = x + layer(x)
        return self.head(x)


def test_linear_is_bit_identical_to_numpy_matmul():
    lin = nn.Linear(64, 8)
    x = torch.from_numpy(sample((5, 64), 0.003, seed=1))
    opts = dict(recipe="paper-e4m3-4o6", block_size=8)
    fq = FakeQuantLinear(lin, weight=TensorQuantizer(**opts), act=TensorQuantizer(**opts))
    wq = golden.quantize(lin.weight.detach().numpy(), **opts).dequantize()
    xq = golden.quantize(x.numpy(), **opts).dequantize()
    want = torch.nn.functional.linear(torch.from_numpy(xq), torch.from_numpy(wq), lin.bias)
    assert torch.equal(fq(x), want)
    np.testing.assert_array_equal(bits(fq.weight.numpy()), bits(wq))


def test_swap_targets_mlp_linears_and_restores():
    model = Tiny()
    x = torch.from_numpy(sample((3, 32), 0.5, seed=2))
    ref = model(x)
    originals = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with fake_quantized(model, weight=TensorQuantizer(recipe="paper-e4m3", block_size=4),
                        act=TensorQuantizer(recipe="paper-e4m3", block_size=4)) as names:
        assert names == [f"layers.{i}.{n}" for i in (0, 1)
                         for n in ("gate_proj", "up_proj", "down_proj")]
        assert isinstance(model.head, nn.Linear)
        quant = model(x)
    assert not torch.equal(quant, ref)
    assert [m for m in model.modules() if isinstance(m, nn.Linear)] == originals
    assert torch.equal(model(x), ref)


def test_swap_restores_after_error_and_rejects_models_without_targets():
    model = Tiny()
    with pytest.raises(RuntimeError):
        with fake_quantized(model, weight=IntervalMask(0, 0.01)):
            raise RuntimeError("boom")
    assert all(isinstance(l.gate_proj, nn.Linear) for l in model.layers)
    with pytest.raises(ValueError, match="no nn.Linear named"):
        with fake_quantized(model, names=("q_proj",)):
            pass


def test_activation_quantizer_quantizes_shared_input_once():
    calls = []

    class Counting(TensorQuantizer):
        def __call__(self, t):
            out = super().__call__(t)
            calls.append(out)
            return out

    model = Tiny()
    x = torch.from_numpy(sample((3, 32), 0.5, seed=3))
    act = Counting(recipe="paper-ue5m3", block_size=16)
    with fake_quantized(model, act=act):
        model(x)
    # gate_proj and up_proj read one tensor: the same output object comes back
    assert calls[0] is calls[1] and calls[3] is calls[4]


def test_interval_mask_zeroes_exactly_the_interval():
    t = torch.tensor([-0.03, -0.01, -0.005, 0.0, 0.004, 0.005, 0.0099, 0.01, 0.5])
    got = IntervalMask(0.005, 0.01)(t)
    keep = ~((t.abs() >= 0.005) & (t.abs() < 0.01))
    assert torch.equal(got, torch.where(keep, t, torch.zeros_like(t)))
    assert got[2] == 0 and got[1] != 0 and got[7] != 0


def test_tiny_llama_swap_changes_loss():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, max_position_embeddings=32)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    ids = torch.randint(0, 64, (2, 16))
    with torch.no_grad():
        ref = model(ids, labels=ids).loss
        with fake_quantized(model, weight=TensorQuantizer(recipe="nvfp4"),
                            act=TensorQuantizer(recipe="nvfp4")) as names:
            quant = model(ids, labels=ids).loss
        assert len(names) == 6 and all(".mlp." in n for n in names)
        assert quant != ref and torch.equal(model(ids, labels=ids).loss, ref)


def test_at_sigma_is_an_exact_power_of_two_rescaling():
    from finescale.golden.fakequant import AtSigma

    w = torch.from_numpy(sample((8, 32), 0.2, seed=4))
    opts = dict(recipe="paper-e4m3", block_size=4)
    got = AtSigma(TensorQuantizer(**opts), 0.005)(w)
    c = 2.0 ** round(float(np.log2(0.005 / float(w.std()))))
    assert c == 2.0 ** -5  # std 0.2 -> 0.00625, the nearest power of two to 0.005
    want = golden.quantize(w.numpy() * np.float32(c), **opts).dequantize() / np.float32(c)
    np.testing.assert_array_equal(bits(got.numpy()), bits(want))
    # the identity survives the round trip bit for bit
    assert torch.equal(AtSigma(lambda t: t, 0.005)(w), w)
    # a per-tensor (hierarchical) scale makes the result independent of the placement
    h = TensorQuantizer(recipe="paper-e4m3-h", block_size=4)
    assert torch.equal(AtSigma(h, 0.005)(w), h(w))
    with pytest.raises(ValueError, match="sigma"):
        AtSigma(h, 0.0)

"""The block-format value: validation, recipes resolving to it, quantize taking it."""

import numpy as np
import pytest

from finescale import golden
from finescale.golden import BlockFormat, Rule


def test_recipe_resolves_to_a_block_format_that_quantize_takes():
    x = np.random.default_rng(1).normal(0, 0.01, (16, 64)).astype(np.float32)
    for name in ("nvfp4", "nvfp4-4o6", "mxfp4", "paper-e4m3-bf", "fouroversix-nvfp4",
                 "torchao-mxfp4-even", "paper-e4m3-up"):
        fmt = golden.recipes.block_format(name)
        a, b = golden.quantize(x, fmt), golden.quantize(x, recipe=name)
        assert np.array_equal(a.element_codes, b.element_codes), name
        assert np.array_equal(a.scale_codes, b.scale_codes), name
    fmt = golden.recipes.block_format("nvfp4-4o6")
    assert (fmt.element.name, fmt.scale_format.name, fmt.block_size, fmt.rule.name) == (
        "e2m1", "e4m3", 16, "4o6")
    assert fmt.scale_bound == 256 and fmt.rule.hierarchical == "tensor"


def test_derived_constants_come_from_the_element_grid():
    e2m1 = golden.formats.get("e2m1")
    top, second = sorted(set(np.abs(e2m1.table)))[-2:][::-1]  # 6 and 4, read off the table
    assert BlockFormat().candidates == (top, second)
    assert BlockFormat().M == top
    assert BlockFormat(rule=Rule("mx")).M == 2.0 ** np.floor(np.log2(top))
    assert BlockFormat(rule=Rule("mx")).rule.scale_rounding == "floor"
    assert BlockFormat(rule=Rule(prevent_zero=True)).pz_floor == golden.formats.get(
        "e4m3").min_subnormal
    assert BlockFormat(scale_format="ue5m3").scale_bound == golden.formats.get("ue5m3").max


def test_options_round_trip_and_replace():
    fmt = golden.recipes.block_format("te-nvfp4-4o6")
    assert BlockFormat.from_options(**fmt.options()) == fmt
    assert fmt.replace(block_size=8).block_size == 8
    assert fmt.replace(block_size=8).rule == fmt.rule


@pytest.mark.parametrize("make, match", [
    (lambda: BlockFormat(block_size=0), "block_size must be a positive integer"),
    (lambda: BlockFormat(scale_format="e9m9"), "unknown format 'e9m9'"),
    (lambda: BlockFormat(rule="4o6"), "rule must be a Rule"),
    (lambda: Rule("zz"), "unknown rule 'zz'"),
    (lambda: Rule(metric="l3"), "unknown metric 'l3'"),
    (lambda: Rule(M=-1.0), "M must be a positive number"),
    (lambda: Rule(error_frac_bits=21), "error_frac_bits must be in 0..20"),
    (lambda: Rule("4o6", rounding="stochastic"), "stochastic rounding is not defined"),
    (lambda: Rule("brute-force", arith="f32"), "arith='f32' is implemented"),
    (lambda: Rule(tensor_scale="encode", arith="f32"), "needs hierarchical='tensor'"),
    (lambda: Rule(faults="reproduce"), "needs an anchor recipe"),
])
def test_bad_values_are_named_in_one_line(make, match):
    with pytest.raises((ValueError, TypeError), match=match) as e:
        make()
    assert "\n" not in str(e.value)


def test_a_format_and_options_together_are_refused():
    x = np.zeros((1, 16), np.float32)
    with pytest.raises(TypeError, match="either a BlockFormat or a recipe"):
        golden.quantize(x, BlockFormat(), rule="mx")
    with pytest.raises(TypeError, match="options of a quantize call"):
        golden.recipes.block_format("nvfp4", axis=0)


def test_input_formats_are_formats_checked_against_numpy():
    import ml_dtypes

    bf16, fp32 = golden.formats.INPUTS["bf16"], golden.formats.INPUTS["fp32"]
    with np.errstate(invalid="ignore"):  # NaN codes
        ref = np.arange(1 << 16, dtype=np.uint16).view(ml_dtypes.bfloat16).astype(np.float64)
    t = bf16.table  # every BF16 code, exhaustively
    assert np.array_equal(np.isnan(t), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.array_equal(t[ok], ref[ok]) and np.array_equal(np.signbit(t[ok]), np.signbit(ref[ok]))
    for fmt, ftype in ((bf16, ml_dtypes.bfloat16), (fp32, np.float32)):
        finfo = ml_dtypes.finfo(ftype)
        assert fmt.dtypes == (np.dtype(ftype), np.dtype(f"uint{fmt.bits}"))
        assert np.array(finfo.max, ftype).view(fmt.dtypes[1]) == fmt.max_code
        assert np.array(np.inf, ftype).view(fmt.dtypes[1]) == fmt.inf_code
        assert 2.0 ** fmt.emin == float(finfo.smallest_subnormal)
    with pytest.raises(ValueError, match="no value table"):
        fp32.table
    with pytest.raises(ValueError, match="input_format must be one of"):
        golden.formats.get_input("fp16")


@pytest.mark.parametrize("name, ftype", [("e4m3", "float8_e4m3fn"), ("e5m2", "float8_e5m2"),
                                         ("e8m0", "float8_e8m0fnu"), ("e2m1", "float4_e2m1fn")])
def test_max_and_inf_codes_from_the_fields_match_ml_dtypes(name, ftype):
    import ml_dtypes

    fmt, ftype = golden.formats.get(name), getattr(ml_dtypes, ftype)
    finfo = ml_dtypes.finfo(ftype)
    assert np.array(finfo.max, ftype).view(np.uint8) == fmt.max_code
    has_inf = np.isinf(np.array(np.inf, ftype).astype(np.float64))
    assert fmt.inf_code == (int(np.array(np.inf, ftype).view(np.uint8)) if has_inf else None)

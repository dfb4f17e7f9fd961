"""k-candidate scale selectors (``rule="kc-<candidates>[-up][-mse|-mae|-maxabs][-f<F>]"``)
in RTL.

The golden rule (:mod:`finescale.golden.selectors`): quantize the block under each
candidate scale RoundSF(amax / M_j), keep the lowest block error, ties to the earliest
candidate.  With ``-up`` each candidate is raised to at least one code above the one
before it (``c_j = max(RoundSF(amax / M_j), min(c_{j-1} + 1, last))``); candidates by
code offsets (``kc-o0_1_2_3``) are one ScaleRound's code plus each offset, clamped to the
searchable codes.  Built from 4-over-6's parts::

    x ─► BlockAmax ─┬─► ScaleRound(M_0) ───────────────────► c_0 ─► EQ ─► BlockError ─► e_0 ─┐
                    ├─► ScaleRound(M_1) ─► max(., c_0 + 1) ─► c_1 ─► EQ ─► BlockError ─► e_1 ─┤
                    └─► ...                         (EQ: ElementQuantizer)           minimum ┘
           (cut 1)                                 (cut 2)                              (cut 3)

``kc-m6_4`` is :class:`~finescale.hw.fouroversix.FourOverSix` (the same ports and
decisions).  ``choice`` is the index of the winning candidate.  Latency 0, or 3 with
``pipelined``, a new block every cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from finescale.golden import scaling
from finescale.golden import selectors as gsel

from .element import ElementQuantizer
from .fouroversix import METRICS, BlockError, FourOverSix, amax_front
from .pipeline import Cuts, check_flag, cut
from .scale import BlockAmax, ScaleRound, split_divisor

__all__ = ["CandidateSearch", "candidate_scales", "check_rule", "code_range"]


def check_rule(rule) -> gsel.Selector:
    """The parsed selector, refused unless the RTL builds it (k candidates by M or by code
    offsets, fixed point)."""
    sel = gsel.parse(rule)
    if sel.kind != "search":
        raise ValueError(f"selector RTL builds k-candidate searches (kc-m.., kc-o..), not "
                         f"{rule!r}")
    if sel.error != "fixed" or sel.metric not in METRICS or sel.sequential:
        raise ValueError(f"selector RTL builds fixed-point {'/'.join(METRICS)} errors, one unit a "
                         f"candidate, not {rule!r}")
    for M in sel.ms:
        if M != int(M):
            raise ValueError(f"selector RTL: M must be 2**j or 3 * 2**j, got {M}")
        split_divisor(int(M))
    return sel


def code_range(sfmt, prevent_zero: bool, steps: bool) -> tuple[int, int]:
    """The first and last searchable scale codes of ``sfmt``; with ``steps`` (``-up``, code
    offsets), refused unless the searchable codes ascend one by one (``code + 1`` is the next
    scale)."""
    floor = sfmt.min_subnormal if prevent_zero and sfmt.zero_code is not None else 0.0
    _, codes = scaling.search_scales(sfmt, floor > 0, floor)
    if steps and any(int(b) != int(a) + 1 for a, b in zip(codes, codes[1:])):
        raise ValueError(f"-up and code offsets need ascending consecutive scale codes; "
                         f"{sfmt.name} has none")
    return int(codes[0]), int(codes[-1])


def candidate_scales(m, rounders, amax, up: int, first: int, last: int, offsets=()) -> list:
    """The candidates' scale codes: each ScaleRound on ``amax`` (submodules ``round<j>``);
    with ``up``, candidate j raised to at least ``up`` codes above candidate j - 1
    (clamped to ``last``), an incrementer and two compares a candidate.  With ``offsets``,
    the one rounder's code plus each offset, clamped to ``first`` .. ``last`` (an adder and
    two compares a candidate)."""
    if offsets:
        m.submodules.round0 = rnd = rounders[0]
        m.d.comb += rnd.amax.eq(amax)
        out = []
        for j, o in enumerate(offsets):
            v = Signal(signed(10), name=f"step{j}")
            m.d.comb += v.eq(rnd.scale + o)
            c = Signal(8, name=f"cand{j}")
            m.d.comb += c.eq(Mux(v < first, first, Mux(v > last, last, v)))
            out.append(c)
        return out
    out, prev = [], None
    for j, rnd in enumerate(rounders):
        m.submodules[f"round{j}"] = rnd
        m.d.comb += rnd.amax.eq(amax)
        code = rnd.scale
        if up and prev is not None:
            step = Signal(9, name=f"step{j}")
            m.d.comb += step.eq(prev + up)
            raised = Mux(step >= last, last, step)
            code = Mux(rnd.scale > raised, rnd.scale, raised)
        prev = Signal(8, name=f"cand{j}")
        m.d.comb += prev.eq(code)
        out.append(prev)
    return out


class CandidateSearch(Cuts, wiring.Component):
    """Block in; scale code, element codes and the winning candidate's index out.

    Members
    -------
    valid_in: In(1), valid_out: Out(1).
    x: In(ArrayLayout(16 or 32, block_size)).
    scale: Out(8); codes: Out(ArrayLayout(4, block_size)); choice: Out(bits of k - 1).
    """

    def __init__(self, *, rule: str = "kc-m6_4-up", scale_format: str = "e4m3",
                 block_size: int = 16, input_format: str = "bf16", prevent_zero: bool = False,
                 pipelined: bool = False):
        self.sel = check_rule(rule)
        self.pipelined = check_flag("pipelined", pipelined)
        self.amax_unit = BlockAmax(block_size=block_size, input_format=input_format)
        self.rounders, self.quantizers, self.errors = [], {}, {}
        for M in self.sel.ms:
            self.rounders.append(ScaleRound(scale_format=scale_format, input_format=input_format,
                                            M=int(M), prevent_zero=prevent_zero))
        for j in range(self.sel.k):
            q = ElementQuantizer(scale_format=scale_format, block_size=block_size,
                                 input_format=input_format)
            self.quantizers[j] = q
            self.errors[j] = BlockError(quantizer=q, metric=self.sel.metric,
                                        error_frac_bits=self.sel.frac_bits)
        q = self.quantizers[0]
        if not self.sel.ms:  # offsets from RoundSF(amax / the element format's largest value)
            self.rounders.append(ScaleRound(scale_format=scale_format, input_format=input_format,
                                            M=int(q.efmt.grid.values[-1]),
                                            prevent_zero=prevent_zero))
        self.code_range = code_range(q.sfmt, prevent_zero,
                                     bool(self.sel.up or self.sel.offsets))
        super().__init__({"valid_in": In(1), "x": In(q.x.shape()), "valid_out": Out(1),
                          "scale": Out(8), "codes": Out(q.codes.shape()),
                          "choice": Out(max(1, (self.sel.k - 1).bit_length()))})

    #: the cuts of 4-over-6's drawing, which the search shares (amax, scales, outputs)
    CUTS = FourOverSix.CUTS

    def elaborate(self, platform):
        m = Module()
        reg = self.pipelined
        amax1, amax2, x2, valid2 = amax_front(m, self, registered=reg)
        cands = candidate_scales(m, self.rounders, amax1, self.sel.up, *self.code_range,
                                 offsets=self.sel.offsets)
        scales, codes, errors = [], [], []
        parts = zip(cands, self.quantizers.values(), self.errors.values())
        for j, (cand, q, err) in enumerate(parts):
            m.submodules[f"quant{j}"] = q
            m.submodules[f"error{j}"] = err
            scale = cut(m, cand, name=f"scale{j}_2", registered=reg)
            m.d.comb += [q.x.eq(x2), q.scale.eq(scale), q.valid_in.eq(valid2),
                         err.x.eq(x2), err.amax.eq(amax2), err.codes.eq(q.codes),
                         err.scale.eq(scale)]
            scales.append(scale)
            codes.append(q.codes.as_value())
            errors.append(err.error)
        best_e, best_s, best_c, pick = errors[0], scales[0], codes[0], 0
        for j in range(1, len(errors)):  # strictly lower wins: ties keep the earlier candidate
            take = Signal(name=f"take{j}")
            m.d.comb += take.eq(errors[j] < best_e)
            best_e, best_s = Mux(take, errors[j], best_e), Mux(take, scales[j], best_s)
            best_c, pick = Mux(take, codes[j], best_c), Mux(take, j, pick)
        m.d.comb += [
            self.choice.eq(cut(m, pick, name="choice3", registered=reg)),
            self.scale.eq(cut(m, best_s, name="scale3", registered=reg)),
            self.codes.eq(cut(m, best_c, name="codes3", registered=reg)),
            self.valid_out.eq(cut(m, valid2, name="valid3", registered=reg)),
        ]
        return m

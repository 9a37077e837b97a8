"""Ehrlich functions (Stanton et al. 2024, arXiv 2407.00236): closed-form sequence benchmarks, optimum 1.0.

An Ehrlich function on sequences ``x`` of length L over v states is defined by:

- a discrete Markov process (DMP): an initial distribution ``initial`` (v,) and a row-stochastic
  transition matrix ``transition`` (v, v) whose zero entries are banned transitions. ``x`` is
  feasible when ``initial[x_0] > 0`` and ``transition[x_t, x_{t+1}] > 0`` for every t;
- c motifs ``a`` of k states each, with offsets ``s`` (``0 = s_1 < ... < s_k``): motif i is
  present at position l when ``x[l + s_j] == a_j`` for all j;
- a quantization q that divides k.

``f(x) = prod_i h_q(x, a_i, s_i)`` for feasible x and ``-inf`` otherwise, where
``h_q(x, a, s) = max_l floor(q * m_l / k) / q`` and ``m_l`` counts the motif's elements present at
position l, over the positions where the motif fits (``l + s_k < L``). So f lies in [0, 1], takes
the values of products of multiples of ``1/q``, and is 1.0 exactly when every motif is present.

:func:`draw_structure` draws an instance as the paper's code (holo-bench's ``Ehrlich``, read, not
copied) does: a uniform initial distribution; a transition matrix that allows a wrap-around band
of ``2 * floor(0.4 v) + 1`` states around a randomly permuted centre, plus the state itself (a
repeat is always feasible), with softmax probabilities of Gaussian logits (temperature 0.5); the
motifs as one feasible DMP draw of c * k states cut into c pieces, so that motif after motif is a
feasible walk; offsets whose gaps share the slack ``(L - c k) // c`` by a random point of the
simplex. Placing the motifs one after another, each gap filled by repeating the last state, is
then a feasible sequence of value 1.0 (:func:`optimal_solution`). Where holo-bench differs, on
draws only: it raises where the chain is not ergodic (here: redrawn), starts the motifs' walk from
the stationary distribution (here: the initial one) and weighs the gaps by normalized uniforms
(here: a uniform point of the simplex). Its instances cannot be re-drawn here (torch's random
streams), so tests compare values on its structures, passed as data (:class:`EhrlichStructure`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lightning_matchopt.errors import ConfigError, DataError
from lightning_matchopt.tasks.base import OfflineData, Task, percentile_band


@dataclass(frozen=True)
class EhrlichStructure:
    """What defines one Ehrlich function (module docstring); checked on construction.

    Attributes:
        initial: initial-state distribution, (v,).
        transition: row-stochastic transition matrix, (v, v); zero entries are banned transitions.
        motifs: (c, k) states.
        offsets: (c, k) positions of each motif's elements relative to its first (first column 0).
        quantization: q, a divisor of k.
    """

    initial: np.ndarray
    transition: np.ndarray
    motifs: np.ndarray
    offsets: np.ndarray
    quantization: int

    def __post_init__(self) -> None:
        v = len(self.initial)
        if self.transition.shape != (v, v) or self.initial.ndim != 1:
            raise ConfigError(f"ehrlich: transition must be ({v}, {v}) for {v} states, got {self.transition.shape}")
        if (self.transition < 0).any() or not np.allclose(self.transition.sum(1), 1.0, atol=1e-5):
            raise ConfigError("ehrlich: transition rows must be probability distributions (non-negative, sum 1)")
        if self.motifs.ndim != 2 or self.offsets.shape != self.motifs.shape:
            raise ConfigError(f"ehrlich: motifs {self.motifs.shape} and offsets {self.offsets.shape} must be (c, k)")
        if self.motifs.min() < 0 or self.motifs.max() >= v:
            raise ConfigError(f"ehrlich: motif states must lie in [0, {v - 1}]")
        if (self.offsets[:, 0] != 0).any() or (np.diff(self.offsets, axis=1) < 1).any():
            raise ConfigError("ehrlich: each motif's offsets must start at 0 and increase")
        check_quantization(self.motifs.shape[1], self.quantization)

    @property
    def num_states(self) -> int:
        """v, the number of states."""
        return len(self.initial)


def check_quantization(motif_length: int, quantization: int) -> None:
    """Raise a ConfigError unless ``1 <= quantization <= motif_length`` and it divides ``motif_length``."""
    if not 1 <= quantization <= motif_length or motif_length % quantization:
        raise ConfigError(
            f"ehrlich: quantization {quantization} must divide motif_length {motif_length} (the paper's rule); "
            f"pick one of {[q for q in range(1, motif_length + 1) if motif_length % q == 0]}"
        )


def feasible(x: np.ndarray, initial: np.ndarray, transition: np.ndarray) -> np.ndarray:
    """Whether each sequence (N, L) has positive probability under the DMP: (N,) bool."""
    x = np.asarray(x)
    return (initial[x[:, 0]] > 0) & (transition[x[:, :-1], x[:, 1:]] > 0).all(axis=1)


def motif_quality(x: np.ndarray, motif: np.ndarray, offsets: np.ndarray, quantization: int) -> np.ndarray:
    """``h_q``: the quantized largest share of the motif's elements present at one position, (N,)."""
    x = np.asarray(x)
    positions = x.shape[1] - offsets[-1]  # where the motif fits: l = 0 .. positions - 1
    present = sum(x[:, s : s + positions] == a for a, s in zip(motif, offsets, strict=True)).max(axis=-1)
    return (present * quantization // len(motif)) / quantization


def ehrlich_value(x: np.ndarray, structure: EhrlichStructure) -> np.ndarray:
    """``f(x)``: the product of the motifs' ``h_q`` for feasible sequences, ``-inf`` for infeasible ones; (N,) float64."""
    x = np.asarray(x)
    value = np.ones(len(x))
    for motif, offsets in zip(structure.motifs, structure.offsets, strict=True):
        value *= motif_quality(x, motif, offsets, structure.quantization)
    return np.where(feasible(x, structure.initial, structure.transition), value, -np.inf)


def sample_dmp(initial: np.ndarray, transition: np.ndarray, n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` sequences of ``length`` states drawn from the DMP (the first from ``initial``, then ``transition``): (n, L) int64.

    Each state is the first whose cumulative probability exceeds a uniform draw, so a state of
    probability zero (a banned transition) is never drawn.
    """
    cumulative = np.cumsum(transition, axis=1)
    cumulative_initial = np.cumsum(initial)

    def draw(cumulative: np.ndarray) -> np.ndarray:  # one categorical draw per row of cumulative probabilities
        u = rng.random(len(cumulative))[:, None] * cumulative[:, -1:]
        return (cumulative <= u).sum(axis=-1)

    x = np.empty((n, length), dtype=np.int64)
    x[:, 0] = draw(np.broadcast_to(cumulative_initial, (n, len(initial))))
    for t in range(1, length):
        x[:, t] = draw(cumulative[x[:, t - 1]])
    return x


def optimal_solution(structure: EhrlichStructure, length: int) -> np.ndarray:
    """A feasible sequence of value 1.0: the motifs one after another, gaps and tail filled by repeats, (L,)."""
    spans = structure.offsets[:, -1] + 1
    if spans.sum() > length:
        raise ConfigError(f"ehrlich: the motifs span {spans.sum()} positions, more than the length {length}")
    x = np.empty(length, dtype=np.int64)
    start = 0
    for motif, offsets, span in zip(structure.motifs, structure.offsets, spans, strict=True):
        element = np.searchsorted(offsets, np.arange(span), side="right") - 1  # the last element placed so far
        x[start : start + span] = motif[element]
        start += span
    x[start:] = x[start - 1]
    return x


def check_options(num_states: int, length: int, num_motifs: int, motif_length: int, quantization: int) -> None:
    """Raise a ConfigError naming the first impossible option of an Ehrlich function."""
    if num_states < 2:
        raise ConfigError(f"ehrlich: num_states must be >= 2 (one state leaves nothing to optimize), got {num_states}")
    if num_motifs < 1 or motif_length < 1:
        raise ConfigError(f"ehrlich: num_motifs and motif_length must be >= 1, got {num_motifs} and {motif_length}")
    if num_motifs * motif_length > length:
        raise ConfigError(
            f"ehrlich: {num_motifs} motifs of length {motif_length} need {num_motifs * motif_length} positions, "
            f"more than length {length}: lower num_motifs or motif_length, or raise length"
        )
    check_quantization(motif_length, quantization)


def ergodic(transition: np.ndarray) -> bool:
    """Whether the chain is irreducible and aperiodic: some power of the matrix is positive (Wielandt: ``(v-1)^2 + 1``)."""
    v = len(transition)
    reach = (transition > 0).astype(np.int64)  # after i squarings: the pattern of the 2^i-th power
    for _ in range(math.ceil(math.log2((v - 1) ** 2 + 1))):
        reach = np.minimum(reach @ reach, 1)
    return bool(reach.all())


def draw_structure(
    num_states: int, length: int, num_motifs: int, motif_length: int, quantization: int, seed: int
) -> EhrlichStructure:
    """An Ehrlich instance drawn from ``seed`` (module docstring); the same seed, the same instance."""
    check_options(num_states, length, num_motifs, motif_length, quantization)
    rng = np.random.default_rng(seed)
    v, band = num_states, int(0.4 * num_states)
    initial = np.full(v, 1.0 / v)
    while True:
        centres = rng.permutation(v)
        allowed = np.zeros((v, v), dtype=bool)
        allowed[np.arange(v)[:, None], (centres[:, None] + np.arange(-band, band + 1)) % v] = True
        allowed[np.arange(v), np.arange(v)] = True
        weights = np.where(allowed, np.exp(rng.standard_normal((v, v)) / 0.5), 0.0)
        transition = weights / weights.sum(axis=1, keepdims=True)
        if ergodic(transition):
            break
    motifs = sample_dmp(initial, transition, 1, num_motifs * motif_length, rng).reshape(num_motifs, motif_length)
    slack = (length - num_motifs * motif_length) // num_motifs
    offsets = np.zeros((num_motifs, motif_length), dtype=np.int64)
    for i in range(num_motifs):
        if motif_length > 1:
            gaps = 1 + np.floor(slack * rng.dirichlet(np.ones(motif_length - 1))).astype(np.int64)
            offsets[i, 1:] = np.cumsum(gaps)
    return EhrlichStructure(initial, transition, motifs, offsets, quantization)


class EhrlichTask(Task):
    """An Ehrlich function as an offline task: samples of its own DMP, cut at a percentile.

    The offline set is ``n_samples`` sequences of the function's own feasible generator (the DMP),
    scored, and cut to those at or below the ``max_percentile`` percentile of the scores. Many
    samples score exactly 0 (a motif with no element in place) and scores take few values, so
    the cut keeps every sample tied with the percentile: the offline set can hold more than
    ``max_percentile`` percent of the samples; a cut that would keep a single score is refused.
    Scores need no normalizer: ``y_min = 0``, ``y_max = 1`` (the optimum), so the normalized score
    is the function's value. The "random designs" reference is fresh samples of the same DMP
    (every one feasible), not uniform tokens (almost all infeasible).

    Args:
        num_states: v, the alphabet's size (tokens ``0 .. v-1``).
        length: L, the sequence length.
        num_motifs: c, motifs to place.
        motif_length: k, states in each motif.
        quantization: q, a divisor of k (k: every element counts); None: k.
        seed: the instance: the structure (transition matrix, motifs, offsets) is drawn from it,
            independently of the run's seed, so another seed is another function.
        n_samples: DMP samples drawn before the cut.
        max_percentile: keep the samples at or below this percentile of the score (100: all).
        sample_seed: seed of the offline samples (a stream of its own, not the reference's).
    """

    name = "ehrlich"
    random_reference_draws = 200  # 200 x 128 DMP samples scored in about half a second
    random_designs_law = "the function's own generator"  # uniform sequences are nearly all infeasible

    def __init__(
        self,
        num_states: int = 32,
        length: int = 32,
        num_motifs: int = 4,
        motif_length: int = 4,
        quantization: int | None = None,
        seed: int = 0,
        n_samples: int = 5000,
        max_percentile: float = 50.0,
        sample_seed: int = 0,
    ) -> None:
        super().__init__()
        quantization = motif_length if quantization is None else quantization
        check_options(num_states, length, num_motifs, motif_length, quantization)
        if n_samples < 2:
            raise ConfigError(f"ehrlich: n_samples must be >= 2, got {n_samples}")
        if not 0 < max_percentile <= 100:
            raise ConfigError(f"ehrlich: max_percentile must be in (0, 100], got {max_percentile}")
        self.num_classes, self.length = num_states, length
        self.n_samples, self.max_percentile, self.sample_seed = n_samples, max_percentile, sample_seed
        self.structure = draw_structure(num_states, length, num_motifs, motif_length, quantization, seed)

    @property
    def design_shape(self) -> tuple[int, ...]:
        """Designs are sequences of ``length`` states."""
        return (self.length,)

    def random_designs(self, n: int, generator: np.random.Generator) -> np.ndarray:
        """``n`` fresh samples of the function's own DMP (the reference the offline data is drawn from)."""
        return sample_dmp(self.structure.initial, self.structure.transition, n, self.length, generator)

    def optimal_solution(self) -> np.ndarray:
        """A sequence of value 1.0, (L,)."""
        return optimal_solution(self.structure, self.length)

    def _load(self) -> OfflineData:
        rng = np.random.default_rng([self.sample_seed, 1])  # not default_rng(0), the reference draws' stream
        x = self.random_designs(self.n_samples, rng)
        y = ehrlich_value(x, self.structure)
        keep = percentile_band(y, 0.0, self.max_percentile)
        if np.ptp(y[keep]) == 0:
            raise ConfigError(
                f"ehrlich: every sample at or below the {self.max_percentile}th percentile scores {y[keep][0]}, "
                "so the offline data has one score: raise max_percentile, or make the function easier "
                "(fewer motifs, or a finer quantization: a larger divisor of motif_length)"
            )
        return OfflineData(x=x[keep], y=y[keep], y_min=0.0, y_max=1.0)

    def _score(self, designs: np.ndarray) -> np.ndarray:
        designs = np.asarray(designs)
        if designs.ndim != 2 or designs.shape[1] != self.length:
            raise DataError(f"ehrlich: designs must be (N, {self.length}) tokens, got {designs.shape}")
        if designs.size and (designs.min() < 0 or designs.max() >= self.num_classes):
            raise DataError(f"ehrlich: tokens must lie in [0, {self.num_classes - 1}]")
        return ehrlich_value(designs, self.structure)

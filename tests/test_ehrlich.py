"""The Ehrlich task: equal to pytorch-holo's Ehrlich on its own structures, and true to the paper's definition."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from lightning_matchopt.errors import ConfigError
from lightning_matchopt.tasks import make_task
from lightning_matchopt.tasks.ehrlich import (
    EhrlichStructure,
    draw_structure,
    ehrlich_value,
    ergodic,
    feasible,
    motif_quality,
    optimal_solution,
    sample_dmp,
)

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "ehrlich").glob("*.npz"))  # written by export.py
SMALL = {"num_states": 8, "length": 12, "num_motifs": 2, "motif_length": 3, "n_samples": 600}


def holo_structure(archive) -> EhrlichStructure:
    """The package's structure as data: its spacings are the gaps between motif elements, ours the offsets."""
    gaps = archive["spacings"]
    offsets = np.concatenate([np.zeros((len(gaps), 1), np.int64), np.cumsum(gaps, axis=1)], axis=1)
    return EhrlichStructure(
        archive["initial_dist"].astype(np.float64), archive["transition_matrix"].astype(np.float64),
        archive["motifs"], offsets, int(archive["quantization"]),
    )


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_values_equal_pytorch_holo_on_its_structures(fixture):
    with np.load(fixture) as archive:
        structure, x, expected = holo_structure(archive), archive["x"], archive["values"].astype(np.float64)
    assert np.isneginf(expected).any() and (expected == 1.0).any() and ((expected > 0) & (expected < 1)).any()
    assert np.array_equal(ehrlich_value(x, structure), expected)  # exactly, -inf included
    assert ehrlich_value(optimal_solution(structure, x.shape[1])[None], structure).tolist() == [1.0]
    samples = sample_dmp(structure.initial, structure.transition, 500, x.shape[1], np.random.default_rng(0))
    assert np.isfinite(ehrlich_value(samples, structure)).all()  # our sampler on their matrix: feasible


def test_fixtures_exist():
    assert len(FIXTURES) == 3, "run tests/fixtures/ehrlich/export.py (see its docstring)"


def naive_quality(sequence, motif, offsets, q):
    """h_q by its definition: the best position's count of motif elements in place, quantized down to 1/q."""
    k, best = len(motif), 0
    for start in range(len(sequence) - offsets[-1]):
        best = max(best, sum(sequence[start + s] == a for a, s in zip(motif, offsets, strict=True)))
    return np.floor(q * best / k) / q


@pytest.mark.parametrize("q", [1, 2, 4])
def test_motif_quality_is_the_quantized_share_of_the_motif_present(q):
    rng = np.random.default_rng(q)
    motif, offsets = np.array([1, 2, 3, 0]), np.array([0, 1, 3, 4])
    x = rng.integers(0, 4, size=(300, 9))
    expected = [naive_quality(row, motif, offsets, q) for row in x]
    assert np.array_equal(motif_quality(x, motif, offsets, q), expected)
    # three of four in place at position 2 (x[6] is wrong): 3/4 rounds down to 2/4 with q = 2, to 0 with q = 1
    assert motif_quality(np.array([[3, 3, 1, 2, 0, 3, 1, 3, 3]]), motif, offsets, q).tolist() == [{1: 0, 2: 0.5, 4: 0.75}[q]]


def test_a_banned_transition_makes_the_sequence_infeasible():
    structure = draw_structure(8, 12, 2, 3, 3, seed=0)
    best = optimal_solution(structure, 12)
    banned = np.flatnonzero(structure.transition[best[4]] == 0)[0]
    broken = best.copy()
    broken[5] = banned
    assert feasible(np.stack([best, broken]), structure.initial, structure.transition).tolist() == [True, False]
    assert ehrlich_value(broken[None], structure).tolist() == [-np.inf]


@pytest.mark.parametrize("v, length, c, k, q, seed", [(4, 8, 2, 2, 2, 0), (20, 16, 2, 4, 2, 1), (32, 32, 4, 4, 4, 0),
                                                     (32, 32, 4, 4, 2, 5), (5, 40, 3, 6, 3, 2), (2, 6, 1, 3, 1, 3)])
def test_drawn_structures_have_a_feasible_optimum_and_feasible_samples(v, length, c, k, q, seed):
    structure = draw_structure(v, length, c, k, q, seed)
    assert ergodic(structure.transition) and (np.diag(structure.transition) > 0).all()  # repeats always feasible
    if v >= 4:  # a band of 2 * floor(0.4 v) + 1 allowed states, plus the state itself when the band misses it
        allowed = (structure.transition > 0).sum(1)
        assert ((allowed == 2 * int(0.4 * v) + 1) | (allowed == 2 * int(0.4 * v) + 2)).all()
    best = optimal_solution(structure, length)
    assert ehrlich_value(best[None], structure).tolist() == [1.0]
    samples = sample_dmp(structure.initial, structure.transition, 400, length, np.random.default_rng(seed))
    values = ehrlich_value(samples, structure)
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()


def test_ergodic_tells_a_reducible_or_periodic_chain():
    assert not ergodic(np.eye(3))  # never leaves its state
    assert not ergodic(np.array([[0.0, 1.0], [1.0, 0.0]]))  # period 2: no power is positive
    assert ergodic(np.array([[0.5, 0.5], [1.0, 0.0]]))


@pytest.mark.parametrize("options, message", [
    ({"num_motifs": 3, "motif_length": 5, "length": 14}, "3 motifs of length 5 need 15 positions, more than length 14"),
    ({"motif_length": 4, "quantization": 3}, r"quantization 3 must divide motif_length 4 .* pick one of \[1, 2, 4\]"),
    ({"num_states": 1}, "num_states must be >= 2"),
    ({"max_percentile": 0}, r"max_percentile must be in \(0, 100\]"),
])
def test_impossible_options_are_refused_in_one_line(options, message):
    with pytest.raises(ConfigError, match=message):
        make_task("ehrlich", **options)


def test_the_task_cuts_its_own_samples_and_keeps_the_ties():
    task = make_task("ehrlich", **SMALL, max_percentile=50)
    data = task.data
    samples = task.random_designs(600, np.random.default_rng([0, 1]))  # the offline stream (EhrlichTask._load)
    y = ehrlich_value(samples, task.structure)
    cut = np.percentile(y, 50)
    assert np.array_equal(data.x, samples[y <= cut]) and np.array_equal(data.y, y[y <= cut])  # every tie kept
    assert (data.y_min, data.y_max) == (0.0, 1.0) and np.array_equal(task.normalize_score(data.y), data.y)
    assert task.is_discrete and task.num_classes == 8 and task.design_shape == (12,) and task.input_dim == 12 * 7
    assert task.oracle(task.optimal_solution()[None]).tolist() == [1.0]


def test_the_instance_is_the_seed_and_not_the_runs_seed():
    first, same, other = (make_task("ehrlich", **SMALL, seed=s) for s in (0, 0, 1))
    same.use_run_seed(7)
    assert np.array_equal(first.structure.transition, same.structure.transition)
    assert np.array_equal(first.data.x, same.data.x)
    assert not np.array_equal(first.structure.transition, other.structure.transition)


def test_random_designs_are_fresh_feasible_samples_not_the_offline_rows():
    task = make_task("ehrlich", **SMALL, max_percentile=100)
    reference = task.random_designs(600, np.random.default_rng(0))  # what search/references.py draws
    assert np.isfinite(task.oracle(reference)).all()
    offline = {tuple(row) for row in task.data.x}
    assert sum(tuple(row) in offline for row in reference) < 60  # another stream, few coincidences
    uniform = np.random.default_rng(0).integers(0, 8, size=(600, 12))  # the base class's uniform tokens
    assert np.isneginf(task.oracle(uniform)).mean() > 0.5


def test_a_cut_that_keeps_one_score_is_refused():
    with pytest.raises(ConfigError, match="scores 0.0, so the offline data has one score: raise max_percentile"):
        _ = make_task("ehrlich", num_states=32, length=32, num_motifs=4, motif_length=4, quantization=1,
                      n_samples=200, max_percentile=50).data


def test_offsets_and_values_of_all_small_sequences_match_the_definition():
    """Every one of the 4^6 sequences of a tiny instance, against the definition written out in loops."""
    structure = draw_structure(4, 6, 2, 2, 2, seed=4)
    x = np.array(list(itertools.product(range(4), repeat=6)))
    expected = []
    for row in x:
        ok = all(structure.transition[a, b] > 0 for a, b in zip(row[:-1], row[1:], strict=True))
        value = np.prod([naive_quality(row, m, s, 2) for m, s in zip(structure.motifs, structure.offsets, strict=True)])
        expected.append(value if ok else -np.inf)
    assert np.array_equal(ehrlich_value(x, structure), expected)
    assert (np.array(expected) == 1.0).any() and np.isneginf(expected).any()


def test_a_fit_scores_its_designs_and_stands_them_beside_the_generators_samples(tmp_path, capsys):
    import json

    from lightning_matchopt.cli import main
    from lightning_matchopt.search.references import random_draws

    options = "{num_states: 8, length: 12, num_motifs: 2, motif_length: 3, n_samples: 600}"
    main(["fit", "--config", "configs/ehrlich.yaml", f"--data.task_options={options}", "--trainer.max_epochs=1",
          "--trainer.enable_progress_bar=false", "--data.n_bins=8", "--model.surrogate.hidden_dims=[32]",
          "--search.n_designs=16", "--search.steps=20", "--search.lr=1.0", f"--trainer.default_root_dir={tmp_path}"])
    log_dir = next(tmp_path.glob("lightning_logs/version_*"))
    results = json.loads((log_dir / "results.json").read_text())
    scores = np.load(log_dir / "designs.npz")["scores"]
    task = make_task("ehrlich", **SMALL)
    assert results["task"] == "ehrlich" and results["d_best"] == task.data.y.max()
    assert results["n_infeasible"] == np.isneginf(scores).sum()
    assert np.array_equal(scores, ehrlich_value(np.load(log_dir / "designs.npz")["designs"], task.structure))
    draws = random_draws(task, 16)  # 200 draws of 16 fresh DMP samples
    assert results["random_designs"]["draws"] == 200
    assert results["random_designs"]["score_100th"] == float(draws["score_100th"].mean())
    assert results["random_designs"]["law"] == task.random_designs_law  # recorded: what the tables and the line name
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("search (ehrlich"))
    assert "16 random designs (from the function's own generator): score_100th=" in line, line

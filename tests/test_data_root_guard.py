"""The suite's own guard: a test that writes into the data root fails the run, and a missing root is said once."""

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py").read_text()


def fake_root(pytester):
    root = pytester.path / "data"
    (root / "tf_bind_8-SIX6_REF_R1").mkdir(parents=True)
    (root / "tf_bind_8-SIX6_REF_R1" / "tf_bind_8-x-0.npy").write_bytes(b"x")
    return root


@pytest.mark.slow
def test_a_write_into_the_data_root_fails_the_session(pytester):
    root = fake_root(pytester)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_writes="def test_it(data_root):\n    (data_root / 'cache.pkl').write_bytes(b'1')\n")
    result = pytester.runpytest_subprocess(f"--data-root={root}")
    result.stdout.fnmatch_lines(
        [f"real Design-Bench data: {root} (1 tests read it)", "*FAILED: tests wrote into the data root*cache.pkl*"]
    )
    assert result.ret == 1


@pytest.mark.slow
def test_without_data_the_header_says_how_many_are_skipped_and_how_to_point_at_data(pytester, monkeypatch):
    monkeypatch.setenv("MATCHOPT_DATA_ROOT", str(pytester.path / "nowhere"))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_reads="def test_it(data_root):\n    pass\n\ndef test_other():\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["real Design-Bench data: not found under *nowhere: 1 tests will be skipped; "
                                 "point them at a data root with --data-root DIR or MATCHOPT_DATA_ROOT=DIR"])
    result.assert_outcomes(passed=1, skipped=1)

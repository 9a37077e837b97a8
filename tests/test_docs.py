"""The tables in docs/results.md and the README are the generated ones, never typed: each block between
``<!-- generated from FILE -->`` and ``<!-- end -->`` must equal FILE, which the command printed
beside it writes from the run files."""

import re

import pytest

from conftest import REPO


@pytest.mark.parametrize("page", ["docs/results.md", "README.md", "docs/synthetic/README.md"])
def test_results_tables_are_the_generated_files(page):
    text = (REPO / page).read_text()
    blocks = re.findall(r"<!-- generated from (\S+) -->\n(.*?)<!-- end -->", text, re.S)
    assert blocks, f"{page} embeds no generated table"
    for name, block in blocks:
        generated = (REPO / name).read_text()
        assert block.strip() == generated.strip(), f"{page} is out of date with {name}: regenerate it"

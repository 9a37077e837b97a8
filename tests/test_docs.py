"""The tables in docs/results.md are the generated ones, never typed: each block between
``<!-- generated from FILE -->`` and ``<!-- end -->`` must equal FILE, which the command printed
beside it writes from the run files."""

import re

from conftest import REPO


def test_results_tables_are_the_generated_files():
    text = (REPO / "docs" / "results.md").read_text()
    blocks = re.findall(r"<!-- generated from (\S+) -->\n(.*?)<!-- end -->", text, re.S)
    assert blocks, "docs/results.md embeds no generated table"
    for name, block in blocks:
        generated = (REPO / name).read_text()
        assert block.strip() == generated.strip(), f"docs/results.md is out of date with {name}: regenerate it"

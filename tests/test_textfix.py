import json

import pytest

from pipeline.stages.textfix import fix_text
from tests.conftest import DATA

CASES = json.loads((DATA / "textfix_cases.json").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_fix_text_cases(case):
    fixed = fix_text(case["in"])
    assert fixed.text == case["out"]
    assert fixed.changed == (case["in"] != case["out"])


def test_repairs_are_explained():
    assert fix_text("itâ€™s").steps == ("encode:sloppy-windows-1252", "decode:utf-8")
    assert fix_text("it’s").steps == ()

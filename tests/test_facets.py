"""Facet values analysts can trust (issue 22): one cleaning rule for every keyword facet, and the
``text_quality`` verdict on human text that repair could not save."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.seedfile import parse_seed
from pipeline.sources.folder import discover
from pipeline.stages.facets import damaged, facet_value, text_quality
from pipeline.stages.normalize import canonical_topic, canonical_topics, normalize
from pipeline.stages.textfix import fix_text
from tests.conftest import DATA

FORMAT_CHARS = ["\u200b", "\u2060", "\u00ad", "\ufeff", "\u200e", "\u200f", "\u202a", "\u202c", "\u200d", "\u2066"]
SPACES = [" ", "  ", "\t", "\u00a0", "\u3000", "\u2002", "\u2009", "\u202f", "\u2028", "\u2029", " \u00a0\t"]
TEXT_CASES = json.loads((DATA / "textfix_cases.json").read_text(encoding="utf-8"))["cases"]
NEGATIVES = [c["in"] for c in TEXT_CASES if c["in"] == c["out"]]
REPAIRED = [c["in"] for c in TEXT_CASES if c["in"] != c["out"]]


# ----------------------------------------------------------------------------- one facet value
@st.composite
def spellings(draw):
    """Two spellings of one word sequence that differ only in format characters, normalisation form
    (NFC/NFD) and spacing."""
    words = draw(
        st.lists(
            st.text(st.characters(blacklist_categories=("Cs", "Cf", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=8),
            min_size=1,
            max_size=4,
        )
    )

    def spell() -> str:
        out = []
        for w in words:
            form = draw(st.sampled_from(["NFC", "NFD"]))
            chars = list(unicodedata.normalize(form, w))
            for _ in range(draw(st.integers(0, 3))):
                chars.insert(draw(st.integers(0, len(chars))), draw(st.sampled_from(FORMAT_CHARS)))
            out.append("".join(chars))
        lead, trail = draw(st.sampled_from(["", *SPACES])), draw(st.sampled_from(["", *SPACES]))
        return lead + "".join(w + draw(st.sampled_from(SPACES)) for w in out[:-1]) + out[-1] + trail

    return spell(), spell()


@settings(max_examples=300, deadline=None)
@given(spellings())
def test_spellings_differing_only_in_invisibles_form_or_spacing_are_one_facet_value(pair):
    a, b = pair
    assert facet_value(a) == facet_value(b)
    assert canonical_topic(a) == canonical_topic(b)
    value = facet_value(a)
    assert facet_value(value) == value  # idempotent: re-running changes nothing
    assert value == value.strip() and "  " not in value
    assert not any(unicodedata.category(ch) in ("Cf", "Zl", "Zp") or (ch.isspace() and ch != " ") for ch in value)


@pytest.mark.parametrize(
    "variants,expected",
    [
        (["AI", "A\u200bI", "\ufeffAI", "AI\u2060", " A\u00adI "], "AI"),  # topics
        (
            ["Computer Vision", "Computer\u200b Vision", "computer\u3000vision", "Computer\u2028Vision"],
            "Computer Vision",
        ),
        (["crème brûlée", "cre\u0300me bru\u0302le\u0301e", "CRÈME\u00a0BRÛLÉE"], "Crème Brûlée"),
        (["ＡＩ", "A\u200dI"], "AI"),  # topics are NFKC: fullwidth is the same tag; ZWJ has no exception here
        (["Ã©tÃ©", "Ã\u200b©tÃ©", "été"], "Été"),  # the same mojibake repair as text, not hidden by a ZWSP
    ],
)
def test_topic_spellings_collapse(variants, expected):
    assert {canonical_topic(v) for v in variants} == {expected}
    assert len(canonical_topics(variants)) == 1


@pytest.mark.parametrize(
    "variants,expected",
    [
        (["TechCrunch", "Tech\u200bCrunch", "\ufeffTechCrunch ", "Tech\u00adCrunch", "TechCrunch\u200e"], "TechCrunch"),
        (["Common Dreams", "Common\u00a0Dreams", "Common\u2009 Dreams", "Common \u200bDreams"], "Common Dreams"),
        (["Le Monde diplomatique", "Le\u3000Monde\tdiplomatique"], "Le Monde diplomatique"),
        (["Süddeutsche Zeitung", "Su\u0308ddeutsche Zeitung", "SÃ¼ddeutsche Zeitung"], "Süddeutsche Zeitung"),
    ],
)
def test_provider_name_spellings_collapse(variants, expected):
    assert {facet_value(v) for v in variants} == {expected}


@pytest.mark.parametrize(
    "value",
    [
        "iPhone",
        "OpenAI",
        "ﬁnance",  # not a topic: NFC keeps the ligature (a name is written as its owner writes it)
        "ＡＢＣ全角",
        "Ελληνικά 東京 한국어 русский",
        "Crème brûlée à São Paulo",
        "“Quoted” — it’s",
        "Rock & Roll",
        "C++",
        *NEGATIVES,
    ],
)
def test_clean_values_stay_unchanged(value):
    assert facet_value(value) == " ".join(value.split())


def test_facet_values_drop_zwj_but_titles_keep_it():
    emoji = "👩\u200d💻 coders"
    assert facet_value(emoji) == "👩💻 coders"
    assert fix_text(emoji).text == emoji


def test_every_keyword_facet_of_a_document_is_cleaned(tmp_path):
    (tmp_path / "a.txt").write_text(
        "---\n"
        'title: "Tech\u200bCrunch\u00a0news \U0001f469\u200d\U0001f4bb"\n'
        "publishedDateTime: 2021-10-06\n"
        'webUrl: "https://example.com/a"\n'
        'category: "\ufeffTech\u00adnology "\n'
        'type: "Art\u200bicle"\n'
        'topics: ["A\u200bI", "\u00a0ai", "computer\u3000vision"]\n'
        'provider: {name: "Tech\u2060Crunch", domain: "Tech\u200bCrunch.com."}\n'
        "related:\n"
        '  - {title: "x", webUrl: "https://example.com/b", type: "vid\u200beo",'
        ' provider: {name: "Common\u00a0Dreams\u200b", domain: "commondreams.org"}}\n'
        "---\n",
        encoding="utf-8",
    )
    seeds, _ = discover(tmp_path)
    src = normalize(parse_seed(seeds[0])).source
    assert src["topics"] == ["AI", "Computer Vision"]
    assert (src["category"], src["type"]) == ("technology", "article")
    assert src["provider"] == {"name": "TechCrunch", "domain": "techcrunch.com"}
    rel = src["related"][0]
    assert (rel["type"], rel["provider"]["name"]) == ("video", "Common Dreams")
    assert src["title"] == "Tech\u200bCrunch\u00a0news \U0001f469\u200d\U0001f4bb"  # titles are not facets
    assert (src["text_quality"], src["text_quality_fields"]) == ("clean", [])


# ----------------------------------------------------------------------------- text quality
@pytest.mark.parametrize("text", NEGATIVES)
def test_text_that_must_stay_unchanged_is_not_damaged(text):
    assert fix_text(text).text == text
    assert not damaged(text)


@pytest.mark.parametrize("text", REPAIRED)
def test_repairable_text_is_not_damaged_once_repaired(text):
    assert not damaged(fix_text(text).text)


@pytest.mark.parametrize(
    "text",
    [
        "Caf\ufffd au lait",  # bytes lost before we got them
        "price \u0081 list",  # a C1 control that is not Windows-1252 (nothing to decode it to)
        "cafÃ© \ufffd",
        "cÃ©Ãƒ",  # half repaired, the rest is not UTF-8 read as Windows-1252: ftfy's badness measure
        "Ã©\x81",  # 0x81 has no Windows-1252 character: the C1 control stays
    ],
)
def test_damage_that_repair_cannot_undo_is_flagged(text):
    assert damaged(fix_text(text).text)


def test_text_quality_verdicts():
    assert text_quality([], []) == ("clean", [])
    assert text_quality([], ["related[1].excerpt", "related[0].excerpt", "title"]) == (
        "repaired",
        ["related.excerpt", "title"],
    )
    assert text_quality(["provider.name"], ["title"]) == ("damaged", ["provider.name"])


def _doc(tmp_path, title: str, excerpt: str = "fine", provider: str = "Example"):
    (tmp_path / "a.txt").write_text(
        "---\n"
        f"title: {json.dumps(title)}\n"
        f"excerpt: {json.dumps(excerpt)}\n"
        "publishedDateTime: 2021-10-06\n"
        'webUrl: "https://example.com/a"\n'
        f"provider: {{name: {json.dumps(provider)}}}\n"
        "---\n",
        encoding="utf-8",
    )
    seeds, _ = discover(tmp_path)
    return normalize(parse_seed(seeds[0])).source


def test_documents_carry_clean_repaired_or_damaged(tmp_path):
    src = _doc(tmp_path, "Crème brûlée — “naïve”", "Ελληνικά 東京")
    assert (src["text_quality"], src["text_quality_fields"]) == ("clean", [])
    src = _doc(tmp_path, "itâ€™s here", "surveillanceâ€”a development")
    assert (src["text_quality"], src["text_quality_fields"]) == ("repaired", ["excerpt", "title"])
    assert src["title"] == "it’s here"
    src = _doc(tmp_path, "itâ€™s here", "Caf\ufffd au lait", provider="Le Monde\ufffd")
    assert (src["text_quality"], src["text_quality_fields"]) == ("damaged", ["excerpt", "provider.name"])
    assert src["excerpt"] == "Caf\ufffd au lait"  # flagged, never hidden: the analyst finds it to fix at the source


def test_the_run_report_counts_text_quality_through_xcom():
    from pipeline.run.report import RunReport

    a, b = RunReport(text_quality={"clean": 3, "repaired": 1}), RunReport(text_quality={"damaged": 2, "clean": 1})
    merged = RunReport.from_dict(a.to_dict(max_items=200)).merge(RunReport.from_dict(b.to_dict(max_items=200)))
    assert merged.text_quality == {"clean": 4, "repaired": 1, "damaged": 2}
    assert "  text quality: clean 4, damaged 2, repaired 1" in merged.render().splitlines()
    assert not any(line.startswith("  text quality") for line in RunReport().render().splitlines())

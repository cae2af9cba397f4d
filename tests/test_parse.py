import json

import pytest

from devtools.seedfile import parse_seed
from pipeline.errors import SeedError
from pipeline.sources.folder import discover
from pipeline.stages.parse import MAX_SEED_BYTES, ParseConfig, parse_text
from pipeline.stages.validate import INTEGER_MAX, INTEGER_MIN, MAX_EXTRA_KEYS, MAX_KEY_BYTES, MAX_KEYWORD_BYTES
from pipeline.types import SeedOutcome, SeedRecord
from tests.conftest import DATA, SAMPLE_SEEDS

BAD = DATA / "seeds" / "bad"
GOOD = DATA / "seeds" / "good"
EXPECTED_BAD = json.loads((DATA / "seeds" / "expected_bad.json").read_text(encoding="utf-8"))


def _seed(folder, name):
    seeds, _ = discover(folder)
    return next(s for s in seeds if s.rel == name)


@pytest.mark.parametrize("name", sorted(EXPECTED_BAD))
def test_bad_seed_is_quarantined_with_exact_reason(name):
    out = parse_seed(_seed(BAD, name))
    assert isinstance(out, SeedOutcome) and out.state == "quarantined"
    assert out.path.endswith(name)  # the report names the file
    assert (out.stage, out.reason) == (EXPECTED_BAD[name]["stage"], EXPECTED_BAD[name]["reason"])


def test_every_bad_case_file_has_an_expectation():
    assert sorted(p.name for p in BAD.iterdir()) == sorted(EXPECTED_BAD)


@pytest.mark.parametrize("name", sorted(p.name for p in GOOD.iterdir()))
def test_good_seed_parses(name):
    assert isinstance(parse_seed(_seed(GOOD, name)), SeedRecord)


def test_sample_seeds_parse():
    seeds, refused = discover(SAMPLE_SEEDS)
    assert len(seeds) == 2 and not refused
    records = [parse_seed(s) for s in seeds]
    assert all(isinstance(r, SeedRecord) for r in records)
    assert records[0].fields["topics"] == ["AI"]
    assert records[1].fields["published"] is False


def test_yaml_11_traps_stay_strings():
    fields = parse_seed(_seed(GOOD, "yaml11_traps.txt")).fields
    assert fields["title"] == "NO"  # not False
    assert fields["excerpt"] == "12:30:00"  # not 45000
    assert fields["publishedDateTime"] == "2021-10-06"  # not a date object


def test_cp1252_file_is_decoded_and_marked():
    fields = parse_seed(_seed(GOOD, "cp1252.txt")).fields
    assert fields["title"] == "Café “quoted”"
    assert fields["_encoding"] == "cp1252"


def test_unknown_fields_are_kept_aside():
    fields = parse_seed(_seed(GOOD, "unknown_fields.txt")).fields
    assert fields["_extra"] == {"sentiment": 0.7, "editorNotes": {"reviewedBy": "someone", "tags": ["a", "b"]}}
    assert fields["related"][0]["_extra"] == {"mood": "happy"}


def test_oversized_file_is_refused_without_reading_it(tmp_path):
    big = tmp_path / "huge.txt"
    with open(big, "wb") as fh:  # sparse 30 MB file: cheap to make, would be slow to parse
        fh.truncate(30 * 1024 * 1024)
    seeds, _ = discover(tmp_path)
    out = parse_seed(seeds[0])
    assert isinstance(out, SeedOutcome) and out.state == "quarantined"
    assert (out.stage, out.reason) == ("read", "file is 30.0 MiB, over the 1.0 MiB limit for a seed")


def test_size_limit_is_configurable(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text((SAMPLE_SEEDS / "000_9af88004a1e871b6.txt").read_text(encoding="utf-8"), encoding="utf-8")
    seeds, _ = discover(tmp_path)
    out = parse_seed(seeds[0], ParseConfig(max_bytes=100))
    assert isinstance(out, SeedOutcome) and out.state == "quarantined" and out.stage == "read"
    assert MAX_SEED_BYTES == 1 << 20


def test_alias_bomb_is_refused_fast():
    # the classic 9^9 expansion: refused at the first alias, never expanded
    text = (
        "---\n"
        + "\n".join(
            f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ).replace("b: &b [*a", "a: &a [1]\nb: &b [*a")
        + "\n---\n"
    )
    with pytest.raises(Exception) as exc:
        parse_text(text)
    assert "YAML aliases are not allowed" in str(exc.value)


def test_very_deep_nesting_does_not_crash():
    text = "---\ntitle: " + "[" * 100_000 + "]" * 100_000 + "\n---\n"
    with pytest.raises(Exception) as exc:
        parse_text(text)
    assert "nesting deeper than" in str(exc.value)


def test_fast_and_pure_loaders_agree_on_every_case_file():
    """The libyaml-backed loader is an optimisation only: same data, same errors, on every case."""
    import yaml

    from pipeline.safety import yamlsafe
    from pipeline.stages.parse import decode, split_front_matter

    assert yamlsafe.FastUntrustedLoader is not None  # PyYAML here is built with libyaml

    def outcome(loader_cls, text):
        loader = loader_cls(text)
        try:
            return loader.get_single_data()
        except yaml.MarkedYAMLError as exc:
            return (exc.problem, exc.problem_mark.line, exc.problem_mark.column)
        finally:
            loader.dispose()

    checked = 0
    for path in sorted((DATA / "seeds").glob("*/*")) + sorted(SAMPLE_SEEDS.iterdir()):
        try:
            text = split_front_matter(decode(path.read_bytes())[0])
        except SeedError:  # not UTF-8, binary or no front matter: nothing to compare
            continue
        if yamlsafe._C1.search(text):
            continue  # libyaml refuses C1 controls; load() routes such text to the pure loader
        assert outcome(yamlsafe.FastUntrustedLoader, text) == outcome(yamlsafe.UntrustedLoader, text), path.name
        checked += 1
    assert checked >= 15


@pytest.mark.parametrize(
    "name, kept, warning",
    [
        (
            "dropped_related.txt",
            ("related", [{"title": "ok"}]),
            "dropped related[1]: required field 'related[1].title' is missing",
        ),
        ("dropped_image.txt", ("images", []), "dropped images[0]: required field 'images[0].url' is missing"),
    ],
)
def test_one_bad_list_element_is_dropped_not_the_article(name, kept, warning):
    rec = parse_seed(_seed(GOOD, name))
    assert isinstance(rec, SeedRecord)
    assert rec.fields[kept[0]] == kept[1]
    assert rec.warnings == (warning,)


def test_null_topic_is_dropped_with_a_warning():
    warnings: list[str] = []
    fields = parse_text(
        '---\ntitle: t\npublishedDateTime: 2021-10-06\nwebUrl: "https://e.com/a"\ntopics: [AI, ~, " "]\n---\n', warnings
    )
    assert fields["topics"] == ["AI"]
    assert warnings == [
        "dropped topics[1]: field 'topics[1]' must be a string, got null",
        "dropped topics[2]: field 'topics[2]' must not be empty",
    ]


# ----------------------------------------------------------------------------- what the mapping would refuse
ARTICLE = '---\ntitle: t\npublishedDateTime: 2021-10-06\nwebUrl: "https://e.com/a"\n'


def _refusal(extra: str) -> str:
    with pytest.raises(SeedError) as err:
        parse_text(ARTICLE + extra + "\n---\n")
    assert err.value.stage == "validate"
    return str(err.value)


def test_integers_outside_the_mapped_integer_type_are_refused_naming_the_field():
    assert _refusal("quality: 3000000000") == (
        "field 'quality' must be an integer between -2147483648 and 2147483647, got integer 3000000000"
    )
    assert _refusal("heat: -2147483649") == (
        "field 'heat' must be an integer between -2147483648 and 2147483647, got integer -2147483649"
    )
    edge = parse_text(ARTICLE + "quality: 2147483647\nheat: -2147483648\n---\n")
    assert (edge["quality"], edge["heat"]) == (INTEGER_MAX, INTEGER_MIN)


def test_an_image_or_related_item_with_an_integer_out_of_range_is_dropped_with_a_warning():
    warnings: list[str] = []
    fields = parse_text(
        ARTICLE + "images: [{url: a.png, width: 4294967296}, {url: b.png, height: 600}]\n"
        "related: [{title: r, quality: 2147483648}]\n---\n",
        warnings,
    )
    assert fields["images"] == [{"url": "b.png", "height": 600}] and fields["related"] == []
    assert warnings == [
        "dropped images[0]: field 'images[0].width' must be an integer between -2147483648 and 2147483647, "
        "got integer 4294967296",
        "dropped related[0]: field 'related[0].quality' must be an integer between -2147483648 and 2147483647, "
        "got integer 2147483648",
    ]


def test_an_unknown_field_name_longer_than_the_node_accepts_is_refused():
    long_name = "k" * (MAX_KEY_BYTES + 1)
    assert _refusal(f"? {long_name}\n: 1") == (
        f"field name '{'k' * 58}… is too long: 50,001 bytes of UTF-8, at most 50,000"
    )
    # bytes, not characters, at any depth: 25,001 two-byte characters under custom.deep
    assert _refusal(f"custom:\n  deep:\n    ? {'é' * 25_001}\n    : 1") == (
        f"field name '{'é' * 58}… in 'custom.deep' is too long: 50,002 bytes of UTF-8, at most 50,000"
    )
    assert parse_text(ARTICLE + f"? {'k' * MAX_KEY_BYTES}\n: 1\n---\n")["_extra"] == {"k" * MAX_KEY_BYTES: 1}


def test_too_many_unknown_field_names_are_refused():
    # one mapping with too many keys is refused by the YAML loader before any dict is built (yamlsafe.MAX_KEYS)
    with pytest.raises(SeedError) as err:
        parse_text(ARTICLE + "\n".join(f"x{i}: {i}" for i in range(MAX_EXTRA_KEYS + 1)) + "\n---\n")
    assert (err.value.stage, str(err.value)) == ("yaml", "a mapping has more than 1,000 keys at line 1002, column 1")
    # names spread over several mappings are counted by validation, at any depth
    nested = "custom:\n" + "\n".join(f"  x{i}: {i}" for i in range(MAX_EXTRA_KEYS))  # 1,001 with 'custom'
    assert _refusal(nested) == "too many unknown fields: more than 1,000 field names at any depth"
    fine = "custom:\n" + "\n".join(f"  x{i}: {i}" for i in range(MAX_EXTRA_KEYS - 1))
    assert len(parse_text(ARTICLE + fine + "\n---\n")["_extra"]["custom"]) == MAX_EXTRA_KEYS - 1


def test_keyword_values_over_the_term_limit_are_refused():
    assert _refusal("category: " + "c" * (MAX_KEYWORD_BYTES + 1)) == (
        "field 'category' is too long: 32,767 bytes of UTF-8, at most 32,766"
    )
    assert _refusal("provider: {domain: " + "d" * (MAX_KEYWORD_BYTES + 1) + "}") == (
        "field 'provider.domain' is too long: 32,767 bytes of UTF-8, at most 32,766"
    )
    # a URL short as written can be too long once percent-encoded (the document's `url`)
    assert _refusal('originalUrl: "https://e.com/' + "é" * 6000 + '"') == (
        "field 'originalUrl' is too long: its canonical form is 36,014 bytes of UTF-8, at most 32,766"
    )
    warnings: list[str] = []
    assert parse_text(ARTICLE + "topics: [AI, " + "t" * 40_000 + "]\n---\n", warnings)["topics"] == ["AI"]
    assert warnings == ["dropped topics[1]: field 'topics[1]' is too long: 40,000 bytes of UTF-8, at most 32,766"]


@pytest.mark.parametrize("title", ['"\\x00"', '"\\u200b"', '"\\u2060\\ufeff"', '" \\u3000\\t"'])
def test_a_title_with_nothing_to_read_is_empty(title):
    """Found by the seed fuzz: control or invisible characters alone passed "must not be empty", and repair
    then indexed an empty or invisible title."""
    with pytest.raises(SeedError) as err:
        parse_text(ARTICLE.replace("title: ", "title: " + title + "\nx_old_title: ", 1) + "\n---\n")
    assert (err.value.stage, str(err.value)) == ("validate", "field 'title' must not be empty")

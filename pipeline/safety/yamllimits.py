"""The limits both YAML loaders enforce (:mod:`~pipeline.safety.yamlsafe` and its optional fast path
:mod:`~pipeline.safety.yamlrust`), in one place so that neither loader depends on the other's insides."""

from __future__ import annotations

import re

MAX_DEPTH = 32
MAX_KEYS = 1000
"""Most entries in one mapping. A real seed's largest mapping has about 20 (its whole front matter
holds under 100 ``:`` and ``,``); a mapping this big is not a seed. The bound is what keeps every
loader linear: the Rust path builds its dicts with Python's hash, where keys can be chosen to collide
(multiples of 2**61 - 1), making each insertion cost as much as the whole mapping so far; the screen
in :mod:`~pipeline.safety.yamlrust` keeps more than this many key separators away from it. With it,
the whole parse of a front matter of ``parse.MAX_SEED_BYTES`` (1 MiB) is bounded; measured figures in
``bench/bench_yaml.py``."""

INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1
"""Integers a seed may hold: a signed 64-bit value (what JSON consumers and OpenSearch's ``long`` take)."""

# Text the fast paths cannot take as it is: C1 controls (libyaml refuses them; ``yamlsafe`` swaps them
# for private-use stand-ins), those stand-ins themselves, and lone surrogates (libyaml's UTF-8 encoding
# would raise). Such text goes to the pure loader.
SPECIAL = re.compile("[\x80-\x84\x86-\x9f\ud800-\udfff\U000f0080-\U000f009f]")

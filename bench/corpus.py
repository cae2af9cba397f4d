"""Synthetic seed corpus shaped like ``examples/seeds`` (for benchmarks and differential tests).

Deterministic from ``seed``: the same ``(n, seed)`` gives byte-identical files (and the same mtimes).

Shape (per file, like the samples): title 40-130 chars, excerpt ~150-260 chars, a ~600-char
``secured`` blob, 2-4 images spread over the article and its related entries, 1-3 related articles
each with a provider and an image, topics from a skewed distribution (AI dominates, as in the
samples), providers from a Zipf-like distribution. Damage and oddities, at roughly these shares:

- ~10 % of files with mojibake in one or more human-text fields (``â€”``, ``â€™``, ``Ã©``, ``â€œ…â€``);
- ~8 % with correct curly quotes, ~5 % with non-Latin text (Cyrillic, Greek, CJK, Arabic),
  ~3 % with HTML entities (``&amp;``: ASCII, yet repaired by ftfy);
- ~3 % broken files: bad YAML (an unterminated quote) or a missing title (quarantined);
- ~2 % duplicated articles: a second file carries the same article URL;
- ~20 % citing another generated article: their first related entry is the URL of an article generated
  before them (drawn from a random stream of its own, so the rest of the corpus is what it is without it).

    .venv/bin/python bench/corpus.py /tmp/corpus --n 10000 --seed 1
    .venv/bin/python bench/corpus.py /tmp/corpus --touch 0.01 --seed 2   # edit 1 % of the files
"""

from __future__ import annotations

import argparse
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

PROVIDERS = [  # (name, domain): earlier ones are far more common (Zipf-like)
    ("TechCrunch", "techcrunch.com"),
    ("The Verge", "theverge.com"),
    ("Reuters", "reuters.com"),
    ("Wired", "wired.com"),
    ("Ars Technica", "arstechnica.com"),
    ("TechSpot", "techspot.com"),
    ("Common Dreams", "commondreams.org"),
    ("ZDNet", "zdnet.com"),
    ("VentureBeat", "venturebeat.com"),
    ("Engadget", "engadget.com"),
    ("The Register", "theregister.com"),
    ("Le Monde", "lemonde.fr"),
    ("Süddeutsche Zeitung", "sueddeutsche.de"),
    ("El País", "elpais.com"),
    ("NHK", "nhk.or.jp"),
    ("Heise", "heise.de"),
    ("MIT Technology Review", "technologyreview.com"),
    ("BBC", "bbc.co.uk"),
]
CITE_SHARE = 0.2  # files whose first related entry is an article generated before them
PROVIDER_WEIGHTS = [1 / (i + 1) for i in range(len(PROVIDERS))]
TOPICS = [
    "AI",
    "Computer Vision",
    "machine learning",
    "Privacy",
    "EU",
    "Robotics",
    "NLP",
    "Cloud",
    "Security",
    "iPhone",
    "OpenAI",
    "Semiconductors",
    "Climate",
    "Startups",
    "LLMs",
    "IoT",
]
TOPIC_WEIGHTS = [20, 6, 5, 5, 4, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 1]
WORDS = [
    "european",
    "parliament",
    "ban",
    "facial",
    "recognition",
    "surveillance",
    "privacy",
    "regulators",
    "model",
    "chips",
    "data",
    "cloud",
    "startup",
    "funding",
    "robots",
    "vision",
    "language",
    "open",
    "source",
    "security",
    "breach",
    "court",
    "ruling",
    "market",
    "launch",
    "developers",
    "users",
    "researchers",
    "government",
    "policy",
    "energy",
    "climate",
    "battery",
    "network",
    "quantum",
    "platform",
    "search",
    "mobile",
    "app",
    "update",
    "report",
    "study",
    "analysis",
    "deal",
    "acquisition",
    "investors",
]
MOJIBAKE = [("—", "â€”"), ("’", "â€™"), ("é", "Ã©"), ("“", "â€œ"), ("”", "â€\x9d"), ("–", "â€“"), ("ü", "Ã¼")]
NON_LATIN = [
    "Европейский парламент одобрил запрет",
    "Το Ευρωπαϊκό Κοινοβούλιο ψήφισε",
    "欧州議会が顔認識の禁止を可決",
    "البرلمان الأوروبي يوافق على الحظر",
    "유럽 의회가 금지를 승인했다",
]
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
BASE_TIME = 1_600_000_000  # mtimes: deterministic, spread over a few days


@dataclass
class CorpusInfo:
    folder: Path
    files: list[str] = field(default_factory=list)
    broken: int = 0
    duplicates: int = 0
    mojibake: int = 0
    citing: int = 0  # files whose first related entry is another generated article

    @property
    def n(self) -> int:
        return len(self.files)


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML; C1 characters are escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x9d", "\\u009d")


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    target = rng.randint(lo, hi)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < target:
        words.append(rng.choice(WORDS))
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _damage(rng: random.Random, text: str) -> str:
    """Insert a correct character and then mangle it the way UTF-8-read-as-cp1252 does."""
    _good, bad = rng.choice(MOJIBAKE)
    pos = text.find(" ", rng.randint(0, max(1, len(text) - 1)))
    pos = pos if pos > 0 else len(text) // 2
    return text[:pos] + " " + bad + text[pos:]


def _image(rng: random.Random, host: str, i: int, k: int) -> list[str]:
    w, h = rng.choice([(1200, 630), (1024, 682), (2896, 1947), (800, 450)])
    return [
        f'  - url: "https://{host}/images/{i}/{k}.jpg?w={w}"',
        f"    width: {w}",
        f"    height: {h}",
        f"    isCached: {'true' if rng.random() < 0.7 else 'false'}",
    ]


def seed_text(i: int, rng: random.Random, url: str | None = None, cites: str | None = None) -> tuple[str, dict]:
    """The text of seed number ``i`` and what was put into it (``mojibake``, ``broken``...); ``cites``: the
    URL of the first related entry (another generated article), else a URL of no generated article."""
    flags: dict = {}
    name, domain = rng.choices(PROVIDERS, PROVIDER_WEIGHTS)[0]
    title = _sentence(rng, 40, 130)
    excerpt = _sentence(rng, 150, 260)
    roll = rng.random()
    if roll < 0.10:
        flags["mojibake"] = True
        if rng.random() < 0.7:
            excerpt = _damage(rng, excerpt)
        if rng.random() < 0.5:
            title = _damage(rng, title)
        if rng.random() < 0.15:
            name = _damage(rng, name)
    elif roll < 0.18:
        title = f"“{title}”"
        excerpt = excerpt.replace(" ", " — ", 1) + " it’s said."
    elif roll < 0.23:
        title = rng.choice(NON_LATIN) + ": " + title
    elif roll < 0.26:
        excerpt = excerpt + " R&amp;D &amp; more"
    stamp = BASE_TIME - rng.randint(0, 5 * 365 * 86400)
    y, mo, d = 2016 + (stamp % 10), 1 + (stamp % 12), 1 + (stamp % 28)
    hh, mm = stamp % 24, stamp % 60
    published = f"{y:04}-{mo:02}-{d:02}T{hh:02}:{mm:02}:00" + rng.choice(["Z", "Z", "Z", "+02:00", "-05:00"])
    slug = "-".join(title.lower().split()[:6]).strip('“”"').replace("/", "")
    path_slug = "".join(c for c in slug if c.isascii() and (c.isalnum() or c == "-"))
    url = url or f"https://www.{domain}/news/{y}/{mo:02}/{i}-{path_slug}"
    topics = list(dict.fromkeys(rng.choices(TOPICS, TOPIC_WEIGHTS, k=rng.randint(1, 3))))
    n_images = rng.randint(2, 4)
    n_related = rng.randint(1, min(3, n_images - 1))
    own = n_images - n_related
    lines = [
        "---",
        "category: news",
        f"title: {_q(title)}",
        f"excerpt: {_q(excerpt)}",
        f"publishedDateTime: {published}",
        f'originalUrl: "{url}"',
        f'webUrl: "{url}"',
    ]
    if rng.random() < 0.5:
        lines.append(f'ampWebUrl: "{url}/amp/"')
    lines += [
        "type: article",
        f"quality: {rng.randint(0, 300)}",
        f"heat: {rng.randint(-1, 300)}",
        f"published: {'true' if rng.random() < 0.8 else 'false'}",
        "",
        "provider:",
        f"  name: {_q(name)}",
        f"  domain: {domain}",
    ]
    if rng.random() < 0.3:
        lines += [
            "  images:",
            f'    - url: "/assets/images/organizations/{domain}-50x50.jpg"',
            "      width: 50",
            "      height: 50",
        ]
    lines += ["", "topics:"] + [f"  - {_q(t)}" for t in topics] + ["", "images:"]
    for k in range(own):
        lines += _image(rng, domain, i, k)
    lines += ["", "related:"]
    for r in range(n_related):
        rname, rdomain = rng.choices(PROVIDERS, PROVIDER_WEIGHTS)[0]
        rtitle = _sentence(rng, 40, 120)
        if flags.get("mojibake") and rng.random() < 0.3:
            rtitle = _damage(rng, rtitle)
        rurl = cites if cites and r == 0 else f"https://www.{rdomain}/news/{i}-{r}-related"
        lines += [
            f"  - title: {_q(rtitle)}",
            f"    excerpt: {_q(_sentence(rng, 100, 160))}",
            f"    publishedDateTime: {published}",
            f'    webUrl: "{rurl}"',
            f'    ampWebUrl: "{rurl}/amp"',
            "    type: article",
            "    provider:",
            f"      name: {_q(rname)}",
            f"      domain: {rdomain}",
            f"    quality: {rng.randint(0, 100)}",
            "    images:",
        ]
        lines += ["    " + x for x in _image(rng, rdomain, i, 100 + r)]
    blob = "".join(rng.choice(B64) for _ in range(rng.randint(500, 700)))
    lines += ["", f'secured: "{blob}==;{"".join(rng.choice(B64) for _ in range(22))}=="', "---", ""]
    broken = rng.random()
    if broken < 0.015:
        flags["broken"] = "yaml"
        lines[2] = lines[2][:-1]  # drop the closing quote: unterminated scalar
    elif broken < 0.03:
        flags["broken"] = "missing_title"
        del lines[2]
    return "\n".join(lines), flags


def generate(
    folder: str | os.PathLike[str], n: int, seed: int = 0, dup_share: float = 0.02, cite_share: float = CITE_SHARE
) -> CorpusInfo:
    """Write ``n`` seed files into ``folder`` (created); deterministic from ``seed``."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    cite_rng = random.Random(f"{seed}-cites")  # its own stream: citations change nothing else
    info = CorpusInfo(root)
    urls: list[str] = []
    for i in range(n):
        dup_of = rng.choice(urls) if urls and rng.random() < dup_share else None
        cites = cite_rng.choice(urls) if urls and cite_rng.random() < cite_share else None
        text, flags = seed_text(i, rng, url=dup_of, cites=cites)
        info.citing += cites is not None
        if dup_of is None:
            urls.append(text.split('originalUrl: "', 1)[1].split('"', 1)[0]) if 'originalUrl: "' in text else None
        else:
            info.duplicates += 1
        name = (
            f"{i // 1000:03}/{i:07}_{rng.getrandbits(32):08x}.txt"
            if n > 20_000
            else f"{i:07}_{rng.getrandbits(32):08x}.txt"
        )
        path = root / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        t = BASE_TIME + i
        os.utime(path, ns=(t * 10**9, t * 10**9))
        info.files.append(name)
        info.broken += bool(flags.get("broken"))
        info.mojibake += bool(flags.get("mojibake"))
    return info


def touch(folder: str | os.PathLike[str], share: float, seed: int = 1) -> list[str]:
    """Edit ``share`` of the seed files in ``folder`` (their quality changes): a realistic re-run."""
    root = Path(folder)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.txt"))
    rng = random.Random(seed)
    picked = rng.sample(files, max(1, int(len(files) * share))) if files else []
    for name in picked:
        p = root / name
        text = p.read_text(encoding="utf-8")
        lines = text.split("\n")
        for j, line in enumerate(lines):
            if line.startswith("quality: "):
                lines[j] = f"quality: {int(line.split(': ')[1]) + 1000 + rng.randint(0, 999)}"
                break
        else:
            lines.insert(1, f"heat: {rng.randint(0, 99)}")
        p.write_text("\n".join(lines), encoding="utf-8")
    return picked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--touch", type=float, default=None, help="edit this share of the existing files instead")
    args = ap.parse_args()
    if args.touch is not None:
        print(f"edited {len(touch(args.folder, args.touch, args.seed))} files in {args.folder}")
        return
    info = generate(args.folder, args.n, args.seed)
    print(
        f"{info.n} seeds in {info.folder}: {info.mojibake} with mojibake, {info.broken} broken, "
        f"{info.duplicates} duplicated articles"
    )


if __name__ == "__main__":
    main()

"""The parse budget per seed: wall time of each YAML loader on hostile and large front matter.

    .venv/bin/python bench/bench_yaml.py [--rounds 3] [--json out.json]

Every input is at most ``parse.MAX_SEED_BYTES`` (1 MiB), the most a seed may hold. For each, the
best of ``--rounds`` runs of ``yamlsafe.load`` (the yaml-rs path first), ``load_fast`` (libyaml
events) and ``load_pure`` (the pure-Python reference), and what ``load`` answered. The inputs:

  colliding keys     38,000 integer keys that all hash alike in Python (multiples of 2**61 - 1):
                     took yaml-rs 22-77 s before ``MAX_KEYS`` and the screen's separator bound
  1000 colliding     the most keys one mapping may hold, all colliding: what yaml-rs may still see
  1 MiB seed         a realistic front matter grown to 1 MiB with ``related`` items
  ... + tab          the same with one tab at its end: in a quoted scalar, a comment, or plain text
                     (each used to send the whole text to the pure parser: 2-21 s)
  many small keys    1 MiB of one-character keys in mappings of 1000 (the most the reference builds)
  flow / escapes     1 MiB of short flow items / of escapes: the shapes costliest per byte
  ... (pure only)    text only the pure parser takes (a private-use stand-in of the C1 swap, ":"
                     before a flow indicator, a tab after a tag): the worst case of ``load``

The budget, then: ``load`` of any seed costs at most what ``load_pure`` costs on 1 MiB (the last
rows), and no input is worse than linear in its size. Figures of a run are printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from pipeline.safety import yamlsafe  # noqa: E402
from pipeline.stages.parse import MAX_SEED_BYTES  # noqa: E402

P = (1 << 61) - 1


def _seed_mib() -> str:
    head = (ROOT / "examples" / "seeds" / "000_9af88004a1e871b6.txt").read_text(encoding="utf-8")
    front = head.split("---\n")[1]
    item = (
        "  - title: \"European Parliament opposes 'mass surveillance,' calls for a ban on facial recognition\"\n"
        '    excerpt: "MEPs have officially called for a \\"permanent ban\\" on automated facial recognition."\n'
        "    publishedDateTime: 2021-10-07T12:37:00Z\n"
        '    webUrl: "https://www.techspot.com/news/91618-european-parliament-opposes-mass-surveillance.html"\n'
        "    quality: 74\n"
        "    images:\n"
        '      - url: "https://static.techspot.com/images2/news/bigimage/2021/10/2021-10-06-image-63.jpg"\n'
        "        width: 2896\n"
    )
    grown = front.replace("related:\n", "related:\n" + item * (MAX_SEED_BYTES // len(item)), 1)
    while len(grown.encode()) > MAX_SEED_BYTES - 200:
        grown = grown[: grown.rfind("\n  - title", 0, len(grown) - 1) + 1]
    return grown


def _fill(unit: str, head: str = "", tail: str = "") -> str:
    return head + unit * ((MAX_SEED_BYTES - 200 - len(head) - len(tail)) // len(unit.encode())) + tail


def inputs() -> dict[str, str]:
    seed = _seed_mib()
    block = "".join(f"  k{k}: 1\n" for k in range(1000))
    small_keys = "".join(f"m{m}:\n{block}" for m in range(MAX_SEED_BYTES // (len(block) + 8)))
    return {
        "colliding keys (38,000)": "".join(f"{k * P}: 1\n" for k in range(38000)),
        "1000 colliding keys": "".join(f"{k * P}: 1\n" for k in range(1000)),
        "1000 colliding, 64-bit": "".join(f"{k * P + j}: 1\n" for j in range(250) for k in range(-2, 2)),
        "1 MiB seed": seed,
        '1 MiB seed + tab in ""': seed + 'z: "a\tb"\n',
        "1 MiB seed + tab in comment": seed + "# a\tb\n",
        "1 MiB seed + tab in plain": seed + "z: a\tb\n",
        "many small keys": small_keys,
        "flow items": _fill("a, ", "x: [", "]\n"),
        "escapes": _fill("\\x41\\u00e9", 'x: "', '"\n'),
        "digit runs of 19": _fill("1234567890123456789 ", "x: ", "\n"),
        "seed + U+F0081 (pure only)": seed + 'z: "\U000f0081"\n',
        "seed + [a:] (pure only)": seed + "z: [a:]\n",
        "flow items + [a:] (pure only)": _fill("a, ", "x: [a:, ", "]\n"),
        "small keys + tab after a tag": small_keys[:-200] + "z: !!str\tx\n",
    }


def timed(loader, text: str, rounds: int) -> tuple[float, str]:
    best, answer = float("inf"), ""
    for _ in range(rounds):
        t0 = time.perf_counter()
        try:
            value = loader(text)
            answer = f"value ({type(value).__name__})"
        except yaml.MarkedYAMLError as exc:
            answer = f"{type(exc).__name__}: {exc.problem}"
        best = min(best, time.perf_counter() - t0)
    return best, answer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    print(f"{'input':30} {'KB':>6} {'load':>8} {'fast':>8} {'pure':>8}  load's answer")
    for name, text in inputs().items():
        row = {"input": name, "kb": round(len(text.encode()) / 1000)}
        answer = ""
        for label, loader in (("load", yamlsafe.load), ("fast", yamlsafe.load_fast), ("pure", yamlsafe.load_pure)):
            row[label], got = timed(loader, text, args.rounds)
            answer = answer or got
        row["answer"] = answer
        rows.append(row)
        print(
            f"{name:30} {row['kb']:6} {row['load']:8.3f} {row['fast']:8.3f} {row['pure']:8.3f}  {answer[:60]}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

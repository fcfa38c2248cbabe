#!/usr/bin/env python3
"""markovify (state size 2) on a corpus file: the peer of brisk-generator.

Trains markovify.NewlineText on the posts (one post per line, newlines in a
post become spaces), then calls make_sentence(tries=10) --outputs times with
markovify's default overlap test (max_overlap_ratio 0.7, max_overlap_total
15). Prints one JSON object: system, train_ms, seconds (generation time,
all outputs), outputs (the texts; null where markovify gave up).

Setup: python3 -m venv /tmp/mkv && /tmp/mkv/bin/pip install markovify
Usually run by `cargo run --release -p brisk-benches --bin gen-compare`.
"""

import argparse
import json
import os
import sys
import time

# This file is named markovify.py: drop its own directory from the path so
# that the import finds the library, not this script.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import markovify  # noqa: E402


def read_posts(path, fmt, column):
    posts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if fmt == "tsv":
                fields = line.split("\t")
                col = column if column else len(fields)
                if col > len(fields):
                    continue
                text = fields[col - 1]
            elif fmt == "jsonl":
                text = json.loads(line).get("text", "")
            else:
                text = line
            text = " ".join(text.split())
            if text:
                posts.append(text)
    return posts


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", required=True)
    p.add_argument("--format", choices=["tsv", "lines", "jsonl"], required=True)
    p.add_argument("--text-column", type=int, default=0)
    p.add_argument("--outputs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    import random

    random.seed(args.seed)
    posts = read_posts(args.corpus, args.format, args.text_column)
    if not posts:
        print(f"markovify.py: no posts in {args.corpus}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    model = markovify.NewlineText("\n".join(posts), state_size=2)
    train_ms = (time.perf_counter() - start) * 1e3
    outputs = []
    start = time.perf_counter()
    for _ in range(args.outputs):
        outputs.append(model.make_sentence(tries=10))
    seconds = time.perf_counter() - start
    json.dump(
        {"system": "markovify", "train_ms": train_ms, "seconds": seconds, "outputs": outputs},
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

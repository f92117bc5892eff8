#!/usr/bin/env python3
"""Recompute a media-service prize draw from its public record, with the Python standard library alone.

    python3 verify_draw.py https://media.example/v1/public/campaigns/cmp_.../draw
    python3 verify_draw.py draw.json

It checks that the revealed seed matches the commitment published before the draw, recomputes the Merkle root
of the published entries and the winners (algorithm ``media-service-draw-v1``, described in the record and
below), prints them as JSON and exits 0 when everything matches the record, 1 otherwise.

Algorithm: entries sorted as strings; leaf = SHA-256(0x00 || id); parent = SHA-256(0x01 || left || right), an
odd last node carried up; empty root = SHA-256(""). Random integers: HMAC-SHA256(seed, root || counter as 8-byte
big-endian) read as four 64-bit big-endian integers per block; uniform(n) rejects x >= floor(2^64/n)*n and answers
x mod n. Winners: partial Fisher-Yates (for i < k: j = i + uniform(N - i); swap i, j), first k in prize order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import urllib.request


def merkle_root(entry_ids: list[str]) -> str:
    level = [hashlib.sha256(b"\x00" + e.encode()).digest() for e in sorted(entry_ids)]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        parents = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            parents.append(level[-1])
        level = parents
    return level[0].hex()


def winners(seed_hex: str, entry_ids: list[str], prizes: list[dict]) -> list[dict]:
    ordered = sorted(entry_ids)
    key, root = bytes.fromhex(seed_hex), bytes.fromhex(merkle_root(ordered))
    numbers: list[int] = []
    counter = 0

    def next_number() -> int:
        nonlocal counter
        if not numbers:
            block = hmac.new(key, root + counter.to_bytes(8, "big"), hashlib.sha256).digest()
            numbers.extend(int.from_bytes(block[8 * k:8 * k + 8], "big") for k in range(4))
            counter += 1
        return numbers.pop(0)

    def uniform(n: int) -> int:
        limit = (2 ** 64 // n) * n
        while True:
            x = next_number()
            if x < limit:
                return x % n

    slots = [str(p["name"]) for p in prizes for _ in range(int(p.get("quantity", 1)))]
    k = min(len(slots), len(ordered))
    for i in range(k):
        j = i + uniform(len(ordered) - i)
        ordered[i], ordered[j] = ordered[j], ordered[i]
    return [{"rank": i + 1, "entry_id": ordered[i], "prize": slots[i]} for i in range(k)]


def load(source: str) -> dict:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=30) as response:
            return json.load(response)
    with open(source, encoding="utf-8") as handle:
        return json.load(handle)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    record = load(argv[1])
    if record.get("algorithm") != "media-service-draw-v1":
        print(f"unknown algorithm {record.get('algorithm')!r}", file=sys.stderr)
        return 1
    seed = record.get("seed")
    if not seed:
        print("the seed is not revealed yet: the campaign has not been drawn", file=sys.stderr)
        return 1
    checks = {
        "seed_matches_commitment": hashlib.sha256(bytes.fromhex(seed)).hexdigest() == record["seed_commitment"],
        "merkle_root_matches": merkle_root(record["entries"]) == record["merkle_root"],
    }
    computed = winners(seed, record["entries"], record["prizes"])
    checks["winners_match"] = computed == record["winners"]
    print(json.dumps({"checks": checks, "merkle_root": merkle_root(record["entries"]), "winners": computed},
                     indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

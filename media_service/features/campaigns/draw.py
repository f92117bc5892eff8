"""The prize draw, verifiable by anyone: a Merkle root of the entries, a committed seed, unbiased picks.

Published algorithm (``tools/verify_draw.py`` re-implements it with the standard library alone):

1. The entries are the entry ids (``ent_...``) sorted as strings. Leaf = SHA-256(0x00 || id as UTF-8);
   a parent = SHA-256(0x01 || left || right); an odd node at the end of a level is carried up unchanged;
   the root of no entries is SHA-256 of nothing. Changing, adding or removing one entry changes the root.
2. At publication the service draws a 32-byte secret seed and publishes ``seed_commitment`` =
   SHA-256(seed). At close it publishes the Merkle root (entries are frozen). At the draw it reveals the seed.
3. Random numbers: block i = HMAC-SHA256(key=seed, message=root || i as 8 bytes big-endian), read as
   four unsigned 64-bit big-endian integers, in order. ``uniform(n)`` takes the next integer x and keeps it
   only if x < floor(2^64 / n) * n (rejection: no modulo bias), answering x mod n.
4. Winners: a partial Fisher-Yates shuffle of the sorted entries: for i in 0..k-1, j = i + uniform(N - i),
   swap positions i and j; the first k are the winners, in prize order (prizes expanded by quantity).

The merchant cannot choose the seed after seeing the entries (it is committed first), and cannot change
the entries after seeing the seed (the root is published at close, before the reveal).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Sequence
from typing import Any

ALGORITHM = "media-service-draw-v1"


def leaf(entry_id: str) -> bytes:
    return hashlib.sha256(b"\x00" + entry_id.encode()).digest()


def merkle_root(entry_ids: Sequence[str]) -> str:
    """Hex root of the sorted entry ids (see the module)."""
    level = [leaf(e) for e in sorted(entry_ids)]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        nxt = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def commitment(seed_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(seed_hex)).hexdigest()


def _stream(seed_hex: str, root_hex: str) -> Iterator[int]:
    key, root = bytes.fromhex(seed_hex), bytes.fromhex(root_hex)
    counter = 0
    while True:
        block = hmac.new(key, root + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        for k in range(4):
            yield int.from_bytes(block[8 * k:8 * k + 8], "big")
        counter += 1


def _uniform(stream: Iterator[int], n: int) -> int:
    limit = (2 ** 64 // n) * n
    while True:
        x = next(stream)
        if x < limit:
            return x % n


def pick_winners(seed_hex: str, entry_ids: Sequence[str], count: int) -> list[str]:
    """The first ``count`` entries of the seeded partial shuffle (fewer when there are fewer entries)."""
    ordered = sorted(entry_ids)
    stream = _stream(seed_hex, merkle_root(ordered))
    k = min(count, len(ordered))
    for i in range(k):
        j = i + _uniform(stream, len(ordered) - i)
        ordered[i], ordered[j] = ordered[j], ordered[i]
    return ordered[:k]


def prize_slots(prizes: Sequence[dict[str, Any]]) -> list[str]:
    """Prize names expanded by quantity, in the order the merchant listed them."""
    return [str(p["name"]) for p in prizes for _ in range(int(p.get("quantity", 1)))]


def draw(seed_hex: str, entry_ids: Sequence[str], prizes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Winners with their prizes: ``[{"rank", "entry_id", "prize"}]``."""
    slots = prize_slots(prizes)
    return [{"rank": i + 1, "entry_id": entry, "prize": slots[i]}
            for i, entry in enumerate(pick_winners(seed_hex, entry_ids, len(slots)))]

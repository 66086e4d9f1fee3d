"""How alike two contacts are: a score from 0 to 100 and the reasons behind it.

Names are compared in Latin letters and lower case, word by word (the name index's
normalisation: "Иван Иванов" reads "ivan ivanov"), with rapidfuzz: the better of the token sort
ratio (word order does not matter; a typo costs a little) and, when both names have two words
or more, the token set ratio less a little (one name may hold a word more, a middle name).
Shared emails, phones, organization and city add to the name's score.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from kith.name_index import words
from rapidfuzz import fuzz

# The order reasons are listed in.
REASONS = ("same_email", "same_phone", "similar_name", "same_organization", "same_city")
# Reasons that make a pair worth listing whatever its score: an exact duplicate.
EXACT = frozenset({"same_email", "same_phone"})
# What each shared thing adds to the name's score.
BOOSTS = {"same_email": 20, "same_phone": 15, "same_organization": 5, "same_city": 5}
# A name score from which the names count as a reason of their own.
SIMILAR_NAME = 80
# The token set ratio finds a name inside a longer one; that is a little less than equal.
SUBSET_FACTOR = 0.95


@dataclass(frozen=True, slots=True)
class Side:
    """What is compared of one contact: its kind, names (display name, and given plus family
    name when it has them), organization and city."""

    kind: str
    names: tuple[str, ...]
    organization: uuid.UUID | None = None
    city: str | None = None


def comparable(text: str | None) -> str:
    """A name or city as compared: its words in Latin letters, lower case, one space apart."""
    return " ".join(words(text))


def similarity(first: str, second: str) -> float:
    """How alike two comparable names are, 0 to 100."""
    if not first or not second:
        return 0.0
    best = fuzz.token_sort_ratio(first, second)
    if " " in first and " " in second:
        best = max(best, SUBSET_FACTOR * fuzz.token_set_ratio(first, second))
    return float(best)


def name_score(first: Sequence[str], second: Sequence[str]) -> int:
    """The best similarity between any name of one and any name of the other."""
    return round(
        max((similarity(a, b) for a in first for b in second), default=0.0),
    )


def score(first: Side, second: Side, exact: set[str]) -> tuple[int, list[str]] | None:
    """The pair's score and reasons; None when a person is compared with an organization."""
    if first.kind != second.kind:
        return None
    name = name_score(first.names, second.names)
    found = set(exact & EXACT)
    if name >= SIMILAR_NAME:
        found.add("similar_name")
    if first.organization is not None and first.organization == second.organization:
        found.add("same_organization")
    if first.city and first.city == second.city:
        found.add("same_city")
    total = min(100, name + sum(BOOSTS.get(reason, 0) for reason in found))
    return total, [reason for reason in REASONS if reason in found]


def proposed(total: int, reasons: Sequence[str], threshold: int) -> bool:
    """Whether a pair is listed: its score reaches the threshold, or it shares an email or a
    phone."""
    return total >= threshold or bool(EXACT.intersection(reasons))

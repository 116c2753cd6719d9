"""Whether a sender imitates the agent's own domain without being it.

Both names are compared by their *skeleton*, after UTS #39 §4: compatibility-decomposed (NFKD:
full-width and mathematical letters become plain ones), case-folded, without combining marks
(``é`` is ``e``: an accent is easily missed) or invisible characters, and with the Cyrillic,
Greek and Armenian letters that pass for Latin ones mapped to those. Not the whole confusables
table: the letters of domain names that matter, in a table a reviewer can read. ``xn--`` labels
are decoded first (a label the IDNA codec refuses is compared as written).

A look-alike (in this order, the first that holds):

- the From domain's skeleton is the agent's domain's (``p\u0430ypal.com``: a Cyrillic a), or,
  written as ``xn--``, decodes to such a name (``xn--pypal-4ve.com``);
- the skeletons are a letter or two apart (Damerau-Levenshtein, transpositions count one): one
  for a domain of 5 to 11 characters (``paypa1.com``), two from 12, none below 5;
- the display name shows the agent's domain (or its address), the address being elsewhere.

The agent's own domain, its subdomains and its parents are never look-alikes. Inputs are capped
(a domain at 253 characters, a display name at 998) and the distance is computed only near the
diagonal, so the cost is linear in the capped lengths.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mailbridge.shared.messages.screening import LookalikeReason, LookalikeSender

MAX_DOMAIN_CHARS = 253  # RFC 1035's limit for a name
MAX_LABEL_CHARS = 63
MAX_DISPLAY_NAME_CHARS = 998  # RFC 5322's line limit
MAX_NAMED = 5  # foreign letters a detail names

_PASSES_FOR = {  # a letter, by its Unicode name, and the Latin one it passes for on screen
    "CYRILLIC SMALL LETTER A": "a",
    "CYRILLIC SMALL LETTER IE": "e",
    "CYRILLIC SMALL LETTER O": "o",
    "CYRILLIC SMALL LETTER ER": "p",
    "CYRILLIC SMALL LETTER ES": "c",
    "CYRILLIC SMALL LETTER U": "y",
    "CYRILLIC SMALL LETTER HA": "x",
    "CYRILLIC SMALL LETTER DZE": "s",
    "CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I": "i",
    "CYRILLIC SMALL LETTER JE": "j",
    "CYRILLIC SMALL LETTER SHHA": "h",
    "CYRILLIC SMALL LETTER KOMI DE": "d",
    "CYRILLIC SMALL LETTER QA": "q",
    "CYRILLIC SMALL LETTER WE": "w",
    "CYRILLIC SMALL LETTER PALOCHKA": "l",
    "CYRILLIC SMALL LETTER STRAIGHT U": "y",
    "CYRILLIC SMALL LETTER GHE": "r",
    "CYRILLIC SMALL LETTER KOMI SJE": "g",
    "GREEK SMALL LETTER ALPHA": "a",
    "GREEK SMALL LETTER OMICRON": "o",
    "GREEK SMALL LETTER RHO": "p",
    "GREEK SMALL LETTER NU": "v",
    "GREEK SMALL LETTER UPSILON": "u",
    "GREEK SMALL LETTER IOTA": "i",
    "GREEK SMALL LETTER KAPPA": "k",
    "GREEK SMALL LETTER CHI": "x",
    "GREEK SMALL LETTER GAMMA": "y",
    "GREEK LUNATE SIGMA SYMBOL": "c",
    "GREEK LETTER YOT": "j",
    "GREEK SMALL LETTER ETA": "n",
    "ARMENIAN SMALL LETTER OH": "o",
    "ARMENIAN SMALL LETTER SEH": "u",
    "ARMENIAN SMALL LETTER HO": "h",
    "ARMENIAN SMALL LETTER VO": "n",
    "ARMENIAN SMALL LETTER CO": "g",
    "LATIN SMALL LETTER DOTLESS I": "i",
    "LATIN SMALL LETTER IOTA": "i",
    "LATIN LETTER DENTAL CLICK": "l",
    "LATIN SMALL LETTER ALPHA": "a",
    "LATIN SMALL LETTER SCRIPT G": "g",
    "LATIN SMALL LETTER O WITH STROKE": "o",
    "LATIN SMALL LETTER D WITH STROKE": "d",
    "LATIN SMALL LETTER L WITH STROKE": "l",
    "LATIN SMALL LETTER H WITH STROKE": "h",
}
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"  # soft hyphen, zero-width ones
_CONFUSABLES = str.maketrans(
    {unicodedata.lookup(name): latin for name, latin in _PASSES_FOR.items()}
    | dict.fromkeys(_INVISIBLE)
)


@dataclass(frozen=True)
class Sender:
    """One mailbox of a From header: its display name and its address's domain ("" if none)."""

    display_name: str
    domain: str


def lookalike(sender: Sender, own_domain: str) -> LookalikeSender | None:
    """How ``sender`` imitates ``own_domain``, or None (also when either domain is unknown)."""
    own, theirs = _normalized(own_domain), _normalized(sender.domain)
    if not own or (theirs and _same_organization(readable(theirs), readable(own))):
        return None
    if theirs and (reason := _domain_reason(theirs, own)) is not None:
        return _found(reason, sender.domain, own, _domain_detail(reason, theirs, own))
    if _shows_domain(sender.display_name, own):
        detail = f"the display name shows {own}, the address is at {theirs or 'no domain'}"
        return _found(LookalikeReason.DISPLAY_NAME, sender.domain, own, detail)
    return None


def skeleton(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return bare.translate(_CONFUSABLES)


def readable(domain: str) -> str:
    """The domain as a person reads it: each ``xn--`` label decoded where the codec can."""
    return ".".join(_decoded(label) for label in domain.split("."))


def edits_within(a: str, b: str, limit: int) -> int:
    """The optimal-string-alignment distance of ``a`` and ``b``, or ``limit + 1`` if more:
    only cells within ``limit`` of the diagonal are computed."""
    far = limit + 1
    if abs(len(a) - len(b)) > limit:
        return far
    before: list[int] = []
    previous = [min(j, far) for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        row = [min(i, far)] + [far] * len(b)
        for j in range(max(1, i - limit), min(len(b), i + limit) + 1):
            cost = previous[j - 1] + (a[i - 1] != b[j - 1])
            best = min(previous[j] + 1, row[j - 1] + 1, cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, before[j - 2] + 1)
            row[j] = min(best, far)
        if min(row) == far:
            return far
        before, previous = previous, row
    return previous[len(b)]


def allowed_edits(domain: str) -> int:
    """How many letters off a domain of this length still reads as it at a glance."""
    return 0 if len(domain) < 5 else 1 if len(domain) < 12 else 2


def _domain_reason(theirs: str, own: str) -> LookalikeReason | None:
    shown, meant = skeleton(readable(theirs)), skeleton(readable(own))
    limit = allowed_edits(meant)
    if edits_within(shown, meant, limit) > limit:
        return None
    if readable(theirs) != theirs:
        return LookalikeReason.PUNYCODE
    if shown == meant:
        return LookalikeReason.CONFUSABLE_CHARACTERS
    return LookalikeReason.EDIT_DISTANCE


def _domain_detail(reason: LookalikeReason, theirs: str, own: str) -> str:
    if reason is LookalikeReason.PUNYCODE:
        return f"{theirs} reads as {readable(theirs)}{_named(readable(theirs))}, like {own}"
    if reason is LookalikeReason.CONFUSABLE_CHARACTERS:
        return f"{theirs}{_named(theirs)} is written to look like {own}"
    return f"{theirs} is a letter or two away from {own}"


def _named(text: str) -> str:
    """The letters that are not ASCII, by their Unicode names: on screen they pass for Latin."""
    foreign = list(dict.fromkeys(char for char in text if not char.isascii()))[:MAX_NAMED]
    names = ", ".join(f"{char} {unicodedata.name(char, f'U+{ord(char):04X}')}" for char in foreign)
    return f" ({names})" if names else ""


def _shows_domain(display_name: str, own: str) -> bool:
    """The agent's domain as a whole name in the display name (``support@acme.com``,
    ``www.acme.com``, not ``acme.community``), look-alike letters read as Latin."""
    shown = skeleton(display_name[:MAX_DISPLAY_NAME_CHARS])
    name = re.escape(skeleton(readable(own)))
    return re.search(rf"(?<![\w-]){name}(?![\w-]|\.\w)", shown) is not None


def _same_organization(theirs: str, own: str) -> bool:
    return theirs == own or theirs.endswith("." + own) or own.endswith("." + theirs)


def _normalized(domain: str) -> str:
    return domain[:MAX_DOMAIN_CHARS].strip().rstrip(".").casefold()


def _decoded(label: str) -> str:
    if not label.startswith("xn--") or len(label) > MAX_LABEL_CHARS:
        return label
    try:
        return label.encode("ascii").decode("idna").casefold()
    except ValueError:  # UnicodeError: not ASCII, bad punycode, or does not round-trip
        return label


def _found(reason: LookalikeReason, domain: str, own: str, detail: str) -> LookalikeSender:
    return LookalikeSender(reason=reason, sender_domain=domain, resembles=own, detail=detail)

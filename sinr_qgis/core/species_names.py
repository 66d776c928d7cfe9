"""Species names as free text: one way to compare them, find them in a model and read lists of them.

Every place that matches a name (the bundle lookup, Processing SPECIES lists, range and
presence/absence reference matching, the dock's search) goes through :func:`name_key` and
:class:`SpeciesIndex`, so a name that finds a species in one place finds it everywhere.

Matching rules (:func:`name_key`):

- Unicode compatibility forms are unified (NFKC: an NFD 'é' is the NFC 'é', a non-breaking or
  full-width space is a space), invisible format characters (zero-width spaces, bidi marks, soft
  hyphens) are ignored, case is folded (``casefold``), runs of whitespace (tabs, NBSP) are one
  space, dash and apostrophe variants are '-' and "'", and a comma is followed by one space.
- The hybrid sign: '×' (also '⨯', '✕') and a stand-alone letter 'x' or 'X' are the same sign
  ("Abies x borisii-regis" = "Abies ×borisii-regis" = "Abies × borisii-regis"), as the botanical
  code allows 'x' where '×' is not available. A hybrid is never merged with its non-hybrid
  namesake: "Abies × borisii-regis" and "Abies borisii-regis" are different species.
- A name with authorship ("Quercus alba L., 1753") finds the model's bare name ("Quercus alba"),
  and a bare name finds the model's name with authorship, when exactly one species fits; two
  different authorships never match each other.

Lookup order (:meth:`SpeciesIndex.find`): the text exactly as a code, then exactly as a name or
"Name (code)" label, then by :func:`name_key`, then bare name against name with authorship, then
as a common name (``common_name``, where the model has them: "red maple"). A step that fits two or
more species raises :class:`~sinr_qgis.core.errors.AmbiguousSpeciesError`. A text that fits none
raises :class:`~sinr_qgis.core.errors.SpeciesNotFoundError` with the closest names
(:meth:`SpeciesIndex.suggestions`: "Acer rubra" -> "Did you mean: Acer rubrum (acerrubr)?").

Lists (:meth:`SpeciesIndex.parse_list`, the rule shown in the Processing help as
:data:`LIST_RULE`): the whole text is tried as one species first; then each line is one item or a
comma-separated list; a comma inside a species name needs no quoting when the pieces around it
together form a species name of the model; an item in double quotes ("...", "" for a quote
inside) is taken as it is. A list that reads as two different sets of species is refused.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import difflib
import gc
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

import numpy as np

from .errors import AmbiguousSpeciesError, SpeciesNotFoundError

LIST_RULE = ("Several species: comma-separated or one per line. A name that contains a comma "
             "(authorship such as <tt>Quercus alba L., 1753</tt>) is recognised as one species; put it "
             "in double quotes (<tt>\"Quercus alba L., 1753\", Abies alba</tt>) if the plugin reports the "
             "list as ambiguous. Codes, names with or without authorship, any case, and the hybrid sign "
             "written × or x are accepted.")

HYBRID = "×"
_HYBRID_VARIANTS = "⨯✕"  # vector/cross-mark signs pasted for × (U+00D7)
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_APOSTROPHES = "\u2018\u2019\u02bc\u0060\u00b4"
_TRANSLATE = str.maketrans({**{c: HYBRID for c in _HYBRID_VARIANTS}, **{c: "-" for c in _DASHES},
                            **{c: "'" for c in _APOSTROPHES}})
_COMMA = re.compile(r"\s*,\s*")
# infraspecific rank markers and the lowercase words that open an authorship ("de Candolle")
_RANKS = frozenset({"subsp.", "ssp.", "var.", "subvar.", "f.", "forma", "fo.", "subf.", "cv.", "nothosubsp.",
                    "nothovar.", "morph", "race"})
_AUTHOR_WORDS = frozenset({"de", "del", "della", "der", "den", "di", "da", "du", "d'", "la", "le", "van", "von",
                           "ten", "ter", "zu", "y", "e", "ex", "et", "in", "&", "f.", "fil.", "sensu", "emend.",
                           "nom.", "auct.", "non", "nec", "s.l.", "s.str.", "s.", "l."})
_QUOTES = {'"': '"', "\u201c": "\u201d"}


class NamedSpecies(Protocol):
    """What the index needs of a species (``bundle.Species`` and anything shaped like it); an
    optional ``common_name`` attribute is looked up and suggested too."""

    code: str
    name: str

    @property
    def label(self) -> str: ...


S = TypeVar("S", bound=NamedSpecies)


# ---- comparing names ---------------------------------------------------------------------------
def _clean(text: object) -> str:
    """NFKC, no format characters, one hybrid sign, dashes/apostrophes unified, spaces collapsed;
    case kept (authorship detection needs it)."""
    t = "" if text is None else str(text)
    if t.isascii():  # ASCII holds no format character, nothing NFKC changes, no '×' or variant sign
        tokens = t.split()
    else:
        t = unicodedata.normalize("NFKC", t)
        t = "".join(ch for ch in t if unicodedata.category(ch) != "Cf").translate(_TRANSLATE)
        tokens = t.replace(HYBRID, f" {HYBRID} ").split()
    if "x" in tokens or "X" in tokens:
        tokens = [HYBRID if tok in ("x", "X") else tok for tok in tokens]
    t = " ".join(tokens)
    return _COMMA.sub(", ", t).strip(" ,") if "," in t else t


def name_key(text: object) -> str:
    """The form in which two species names (or codes) are compared: equal keys = the same name.

    See the module docstring for what is unified; ``""`` for None or blank text.
    """
    t = _clean(text).casefold()
    return t if t.isascii() else unicodedata.normalize("NFKC", t)


def _is_epithet(token: str) -> bool:
    return token[:1].islower() and all(ch.isalpha() or ch in "-'" for ch in token)


def split_authorship(text: object) -> tuple[str, str] | None:
    """(bare name, authorship) of a scientific name followed by authorship, e.g.
    ``"Picea abies (L.) H.Karst."`` -> ``("Picea abies", "(L.) H.Karst.")``; None when the text is
    not a name with authorship (a bare name, a code, a vernacular name)."""
    if isinstance(text, str) and text.isascii() and "," not in text and len(text.split(None, 2)) < 3:
        return None  # fewer than three words stay fewer after cleaning: no room for an authorship
    tokens = _clean(text).split()
    i = 1 if tokens[:1] == [HYBRID] else 0
    if len(tokens) < i + 3 or not tokens[i][:1].isupper():
        return None
    i += 1
    if tokens[i] == HYBRID:
        i += 1
    if i >= len(tokens) or not _is_epithet(tokens[i]):
        return None
    i += 1
    while i < len(tokens):
        tok = tokens[i]
        # "subsp. nigrum", "× piperita": a rank marker or hybrid sign with its epithet
        if (tok.casefold() in _RANKS or tok == HYBRID) and i + 1 < len(tokens) and _is_epithet(tokens[i + 1]):
            i += 2
        elif _is_epithet(tok) and tok.casefold() not in _AUTHOR_WORDS:
            i += 1  # an unranked infraspecific epithet (zoology: "Canis lupus familiaris")
        else:
            break
    tail = tokens[i:]
    if not tail or not all(_is_author_token(t) for t in tail):
        return None
    return " ".join(tokens[:i]), " ".join(tail)


def _is_author_token(token: str) -> bool:
    t = token.strip(",;")
    return (not t or t[:1].isupper() or t[:1] in "([" or t[:1].isdigit() or t.casefold() in _AUTHOR_WORDS
            or t.casefold().rstrip(")]") in _AUTHOR_WORDS)


def format_species_list(items: Iterable[str], max_chars: int | None = None) -> str:
    """Codes or names as one comma-separated line that :meth:`SpeciesIndex.parse_list` and any CSV
    reader split back into the same items (an item with a comma or a quote is double-quoted).

    With ``max_chars``, only the leading items that fit whole are written (never half an item).
    """
    out = ""
    for item in items:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow([str(item)])
        text = buf.getvalue()  # csv writes '""' for an empty item: it stays an item
        joined = f"{out},{text}" if out else text
        if max_chars is not None and len(joined) > max_chars:
            break
        out = joined
    return out


def split_last_item(text: str) -> tuple[str, str]:
    """(the text before the list item being typed, that item without its opening quote): what a
    completer completes. ``"Abies alba, Quer"`` -> ``("Abies alba, ", "Quer")``; separators are
    commas and line breaks outside double quotes."""
    in_quote, start = False, 0
    for i, ch in enumerate(text):
        if ch == '"':
            in_quote = not in_quote  # '""' inside quotes toggles twice: still inside
        elif ch in ",\n" and not in_quote:
            start = i + 1
    item = text[start:]
    lead = len(item) - len(item.lstrip())
    return text[:start + lead], item[lead:].lstrip('"\u201c').rstrip()


def isolate_bidi(text: str) -> str:
    """``text`` between Unicode isolate marks (FSI ... PDI) when it holds right-to-left letters, so
    that a Hebrew or Arabic name does not reorder the numbers and punctuation shown next to it;
    other text is returned unchanged."""
    if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text):
        return f"\u2068{text}\u2069"
    return text


# ---- finding species ---------------------------------------------------------------------------
class SpeciesIndex(Generic[S]):
    """Look species up by code or name, following the module's matching rules.

    ``species``: the model's species (head order); ``owner``: the model's name for messages.
    """

    def __init__(self, species: Sequence[S], owner: str = "the model") -> None:
        with _cyclic_gc_paused():
            self._build(species, owner)

    def _build(self, species: Sequence[S], owner: str) -> None:
        self.species = list(species)
        self.owner = owner
        self.fingerprint = self.fingerprint_of(self.species)
        self._code: dict[str, list[int]] = {}
        self._exact: dict[str, list[int]] = {}
        self._key: dict[str, list[int]] = {}
        self._bare: dict[str, list[tuple[int, bool]]] = {}  # bare-name key -> (position, has authorship)
        self._common: dict[str, list[int]] = {}
        # (key, position) of every spelling a suggestion may come from
        self._spellings: list[tuple[str, int]] = []
        self._stems: dict[str, list[int]] = {}  # names without Latin endings: rubra = rubrum
        self.max_commas = 0
        # A paper-scale model has 47,375 species: this loop is its lookup's load, so each distinct
        # text is keyed once and a table takes all of a species' keys in one call.
        spellings_out = self._spellings
        for pos, s in enumerate(self.species):
            code, name, label = s.code, s.name, s.label
            keys = {text: name_key(text) for text in (code, name, label)}
            common = name_key(getattr(s, "common_name", ""))
            _add_all(self._common, (common,), pos)
            _add_all(self._code, (code.strip(),), pos)
            _add_all(self._exact, (name.strip(), label.strip()), pos)
            _add_all(self._key, (keys[code], keys[name], keys[label]), pos)
            self.max_commas = max(self.max_commas, code.count(","), name.count(","), label.count(","))
            spellings = [common]
            for text in dict.fromkeys((code, name)):  # the name last: its bare form gives the stem
                split = split_authorship(text)
                entry = (pos, split is not None)
                bare = name_key(split[0]) if split else keys[text]
                spellings += [keys[text], bare]
                if bare and entry not in self._bare.get(bare, []):
                    self._bare.setdefault(bare, []).append(entry)
            spellings_out.extend([(k, pos) for k in dict.fromkeys(spellings) if k])
            _add_all(self._stems, (_stem_key(spellings[-1]),), pos)
        # built here, not on the first suggestion, so that every query takes milliseconds
        self._bags = _Bags([k for k, _ in self._spellings])

    def renamed(self, owner: str) -> SpeciesIndex[S]:
        """This index under another owner's name (for messages); the tables are shared, not rebuilt."""
        other = copy.copy(self)
        other.owner = owner
        return other

    @staticmethod
    def fingerprint_of(species: Sequence[NamedSpecies]) -> tuple[list[int], list[str], list[str]]:
        """What the index depends on: the species objects (held by the index, so their ids are
        not reused) and their codes and names. Three flat lists, not a tuple per species: checked
        at every lookup, 47,375 tuples set off a full garbage collection (80 ms) now and then."""
        return list(map(id, species)), [s.code for s in species], [s.name for s in species]

    def candidates(self, query: object) -> list[S]:
        """The species ``query`` names: one, none (``[]``) or, when it is ambiguous, several."""
        text = "" if query is None else str(query).strip()
        if not text:
            return []
        for table, key in ((self._code, text), (self._exact, text), (self._key, name_key(text))):
            if key in table:
                return [self.species[p] for p in table[key]]
        split = split_authorship(text)
        bare = name_key(split[0] if split else text)
        # bare <-> with authorship only: two different authorships may be two different taxa
        found = [p for p, authored in self._bare.get(bare, []) if not (authored and split is not None)]
        if not found:
            found = self._common.get(name_key(text), [])  # last: a scientific name always wins
        return [self.species[p] for p in dict.fromkeys(found)]

    def find(self, query: object) -> S:
        """The one species ``query`` names.

        Raises ``SpeciesNotFoundError`` (with close names as a hint) or ``AmbiguousSpeciesError``.
        """
        found = self.candidates(query)
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousSpeciesError(
                f"Species {query!r} matches {len(found)} species of model {self.owner!r} "
                f"({'; '.join(s.label for s in found[:5])}{'; ...' if len(found) > 5 else ''}). "
                "Give the code, or the name exactly as the model spells it.")
        close = [s.label for s in self.suggestions(query)]
        hint = f" Did you mean: {'; '.join(close)}?" if close else ""
        raise SpeciesNotFoundError(
            f"Species {query!r} is not in model {self.owner!r} ({len(self.species)} species).{hint} "
            "Use a code or scientific name from the model's species list.")

    def suggestions(self, text: object, n: int = 5, min_score: float = 0.0) -> list[S]:
        """Up to ``n`` species whose code, name (with or without authorship) or common name is
        close to ``text``, best first; ``[]`` when none is close. ``min_score`` raises the bar
        (``ONE_EDIT_SCORE``: only a slip or a Latin ending away).

        Near misses ("Acer rubra" -> Acer rubrum, "acerrbur" -> acerrubr) score difflib's ratio of
        the :func:`name_key` forms; a name or code that contains a text of 3 or more characters
        ("borisii" -> Abies borisii-regis) scores at least 0.7, more the more of it the text
        covers; a scientific name that differs only in the Latin endings of its epithets (-a, -us,
        -um, -is, -e: "Acer rubra", "Quercus albus") scores ``STEM_SCORE`` (0.95), and one typing
        slip (a letter or digit wrong, missing, added, or two swapped: "100043" -> 100042) at least
        ``ONE_EDIT_SCORE`` (0.9), which difflib alone gives short codes no more than other codes.
        Species scoring under ``SUGGEST_CUTOFF`` (0.6) or more than ``SUGGEST_SPREAD`` (0.15)
        below the best (``CLEAR_SPREAD``, 0.05, when the best is a slip or an ending away) are left
        out, so one clear match is not followed by noise.
        """
        query = name_key(text)
        if not query or n <= 0:
            return []
        bags = self._bags
        # the same name with another Latin ending ("Acer rubra", "Quercus albus") is the likeliest miss
        split = split_authorship(text)
        stem = _stem_key(name_key(split[0]) if split else query)
        score = dict.fromkeys(self._stems.get(stem, []), STEM_SCORE)
        matcher = difflib.SequenceMatcher(autojunk=False)
        matcher.set_seq2(query)  # difflib caches what it learns about the second sequence
        for row in bags.promising(query):
            matcher.set_seq1(bags.keys[row])
            pos = self._spellings[row][1]
            near = ONE_EDIT_SCORE if _one_edit(bags.keys[row], query) else 0.0
            score[pos] = max(score.get(pos, 0.0), matcher.ratio(), near)
        if len(query) >= 3:
            for row in bags.containing(query):
                pos = self._spellings[row][1]
                score[pos] = max(score.get(pos, 0.0), 0.7 + 0.3 * len(query) / len(bags.keys[row]))
        if not score:
            return []
        best = max(score.values())
        # after one slip or ending (0.9+), names two slips away are noise; otherwise offer more
        floor = max(SUGGEST_CUTOFF, min_score,
                    best - (CLEAR_SPREAD if best >= ONE_EDIT_SCORE else SUGGEST_SPREAD))
        chosen = sorted((p for p, v in score.items() if v >= floor), key=lambda p: (-score[p], p))
        return [self.species[p] for p in chosen[:n]]

    def parse_list(self, text: str | Sequence[str]) -> list[S]:
        """The species of a list (rules in the module docstring), in order, duplicates removed.

        ``text``: a string (comma-separated and/or one per line) or a sequence of single items.
        Raises ``SpeciesNotFoundError`` for an unknown item or an empty list, ``AmbiguousSpeciesError``
        for an item or a list that can be read two ways.
        """
        if isinstance(text, str):
            items = self._items(text)
        else:
            items = [str(q).strip() for q in text if q is not None and str(q).strip()]
        if not items:
            raise SpeciesNotFoundError("No species given. Enter one or more codes or names, comma-separated "
                                       "or one per line.")
        out: dict[int, S] = {}
        for item in items:
            s = self.find(item)
            out.setdefault(id(s), s)
        return list(out.values())

    # ---- list splitting --------------------------------------------------------------------
    def _items(self, text: str) -> list[str]:
        whole = text.strip()
        if whole and "\n" not in whole and "\r" not in whole and self.candidates(whole):
            return [whole]
        items: list[str] = []
        for line in whole.splitlines():
            line = line.strip()
            if line and self.candidates(line):
                items.append(line)
            elif line:
                items.extend(self._group(line, _pieces(line)))
        return items

    def _group(self, line: str, pieces: list[tuple[str, bool]]) -> list[str]:
        """Join adjacent unquoted comma pieces that together name a species; refuse two readings."""
        n = len(pieces)
        limit = self.max_commas + 3  # authorship may add commas the model's bare names do not have
        memo: dict[str, bool] = {}

        def item(i: int, j: int) -> str | None:
            if j - i > 1 and (j - i - 1 > limit or any(q for _, q in pieces[i:j])):
                return None
            joined = ", ".join(t for t, _ in pieces[i:j])
            if joined not in memo:
                memo[joined] = bool(self.candidates(joined))
            return joined if memo[joined] or (j - i == 1 and pieces[i][1]) else None

        ways = [0] * n + [1]  # ways[i]: readings of pieces[i:] (capped at 2)
        for i in range(n - 1, -1, -1):
            ways[i] = min(2, sum(ways[j] for j in range(i + 1, min(n, i + limit + 1) + 1) if item(i, j)))
        out, i = [], 0
        while i < n:
            reach = range(min(n, i + limit + 1), i, -1)
            options = [j for j in reach if ways[j] and item(i, j)]
            if not options:
                # no complete reading: take the longest name here; an unknown piece raises "not in model"
                options = [j for j in reach if item(i, j)][:1] or [i + 1]
                if not item(i, options[0]):
                    self.find(pieces[i][0])
            if len(options) > 1:
                j, k = options[0], options[-1]
                whole = item(i, j)
                labels = "; ".join(s.label for s in self.candidates(whole))
                raise AmbiguousSpeciesError(
                    f"The species list {line!r} can be read two ways: {whole!r} as one species ({labels}) "
                    f"or {', '.join(repr(t) for t, _ in pieces[i:k])} and what follows as other species. "
                    f"Put each species in double quotes, e.g. {format_species_list([whole])}, or give one "
                    "species per line.")
            j = options[0]
            out.append(item(i, j) or pieces[i][0])
            i = j
        return out


class _Bags:
    """Character counts of many spellings, to find those that may be close to a query fast.

    difflib's ratio is 2 * matches / (len(a) + len(b)), and matches cannot exceed the characters
    the two texts share; counting characters per bin (code point modulo ``_BINS``, where folding
    only adds shared counts) keeps that an upper bound, computed for every spelling in one numpy
    step. Only the ``_EXACT_LIMIT`` spellings with the highest bound get the exact ratio.
    """

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
        self.counts = self._count("".join(keys), np.repeat(np.arange(len(keys)), self.lengths), len(keys))
        self.text = "\n".join(keys)  # name_key() leaves no line break inside a key
        self.starts = np.concatenate(([0], np.cumsum(self.lengths + 1)[:-1]))

    @staticmethod
    def _count(text: str, rows: np.ndarray, n_rows: int) -> np.ndarray:
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        counts = np.bincount(rows * _BINS + points % _BINS, minlength=n_rows * _BINS)
        # uint8 keeps 47,000 species' counts small; 255+ of one bin in a name never happens
        return np.minimum(counts, 255).astype(np.uint8).reshape(n_rows, _BINS)

    def promising(self, query: str) -> np.ndarray:
        """Rows whose ratio bound reaches ``SUGGEST_CUTOFF``, at most ``_EXACT_LIMIT``, best bound first."""
        bag = self._count(query, np.zeros(len(query), dtype=np.int64), 1)[0]
        bins = np.flatnonzero(bag)  # only the query's bins can be shared: a few columns, not all 64
        shared = np.minimum(self.counts[:, bins], bag[bins]).sum(axis=1)
        bound = 2.0 * shared / (self.lengths + len(query))
        rows = np.flatnonzero(bound >= SUGGEST_CUTOFF)
        if len(rows) > _EXACT_LIMIT:
            rows = rows[np.argpartition(-bound[rows], _EXACT_LIMIT)[:_EXACT_LIMIT]]
        return rows[np.argsort(-bound[rows], kind="stable")]

    def containing(self, query: str) -> np.ndarray:
        """Rows whose spelling contains ``query`` (the first ``_EXACT_LIMIT``)."""
        hits, at = [], self.text.find(query)
        while at >= 0 and len(hits) < _EXACT_LIMIT:
            hits.append(at)
            at = self.text.find(query, at + 1)
        return np.unique(np.searchsorted(self.starts, hits, side="right") - 1)


SUGGEST_CUTOFF = 0.6  # difflib's own default for get_close_matches
SUGGEST_SPREAD = 0.15
CLEAR_SPREAD = 0.05
STEM_SCORE = 0.95
ONE_EDIT_SCORE = 0.9
# gender and number endings of Latin epithets, longest first (sylvestris/sylvestre, rubra/rubrum)
_LATIN_ENDINGS = ("ae", "um", "us", "is", "es", "a", "e", "i", "o")
_BINS = 64
_EXACT_LIMIT = 400  # exact comparisons per query: about 10 ms

_last_index: SpeciesIndex[NamedSpecies] | None = None


def index_for(species: Sequence[S], owner: str = "the model") -> SpeciesIndex[S]:
    """A :class:`SpeciesIndex` of ``species``, reused while the same species are looked up again
    (e.g. every text field of a layer matched against one model's 47,000 species, or the dock's
    lookups and its range-layer matching: one index, built once, whichever owner names it)."""
    global _last_index
    last = _last_index  # one read: another thread may replace it meanwhile
    if last is None or last.fingerprint != SpeciesIndex.fingerprint_of(species):
        last = _last_index = SpeciesIndex(species, owner)
    return last if last.owner == owner else last.renamed(owner)


def _stem_key(key: str) -> str:
    """``key`` (a :func:`name_key`) with the Latin ending of each epithet removed: "acer rubrum"
    and "acer rubra" -> "acer rubr"; "" for a one-word text (a genus, a code)."""
    words = key.split(" ")
    if len(words) < 2:
        return ""
    return " ".join(words[:1] + [_without_ending(w) for w in words[1:]])


_ENDINGS_2 = frozenset(e for e in _LATIN_ENDINGS if len(e) == 2)
_ENDINGS_1 = frozenset(e for e in _LATIN_ENDINGS if len(e) == 1)


def _without_ending(word: str) -> str:
    """``word`` less its first ``_LATIN_ENDINGS`` ending (two letters before one) when at least
    three letters remain; set look-ups, as this runs for every species of a model at its load."""
    if len(word) > 4 and word[-2:] in _ENDINGS_2:
        return word[:-2]
    if len(word) > 3 and word[-1] in _ENDINGS_1:
        return word[:-1]
    return word


def _one_edit(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with at most one character replaced, removed or added, or two
    neighbours swapped."""
    if abs(len(a) - len(b)) > 1:
        return False
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))  # first difference
    if len(a) != len(b):
        return a[i + 1:] == b[i:] if len(a) > len(b) else a[i:] == b[i + 1:]
    return a[i + 1:] == b[i + 1:] or (a[i:i + 2] == b[i:i + 2][::-1] and a[i + 2:] == b[i + 2:])


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector: the tables of 47,375 species are about a million
    small lists and tuples, and the collections their creation triggers re-scan every live object
    (a third of the build, measured). Nothing built here forms a reference cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _add_all(table: dict[str, list[int]], keys: tuple[str, ...], pos: int) -> None:
    """``pos`` under each non-empty key of ``keys`` in ``table``, once."""
    for key in keys:
        if key:
            found = table.get(key)
            if found is None:
                table[key] = [pos]
            elif pos not in found:
                found.append(pos)


def _pieces(line: str) -> list[tuple[str, bool]]:
    """Comma-separated pieces of one line as (text, quoted); empty unquoted pieces are dropped."""
    out: list[tuple[str, bool]] = []
    i, n = 0, len(line)
    while i <= n:
        while i < n and line[i].isspace():
            i += 1
        close = _QUOTES.get(line[i]) if i < n else None
        if close:
            text, i = _quoted(line, i + 1, close)
            while i < n and line[i].isspace():
                i += 1
            if i < n and line[i] != ",":
                raise SpeciesNotFoundError(f"In the species list {line!r}, text follows the quoted name {text!r} "
                                           "without a comma. Separate the species with commas.")
            if text.strip():
                out.append((text.strip(), True))
        else:
            end = line.find(",", i)
            end = n if end < 0 else end
            if line[i:end].strip():
                out.append((line[i:end].strip(), False))
            i = end
        i += 1
    return out


def _quoted(line: str, i: int, close: str) -> tuple[str, int]:
    """The text of a quoted item starting after its opening quote ('""' is a quote) and the index
    after its closing quote."""
    buf = []
    while i < len(line):
        if line[i] == close:
            if close == '"' and line[i + 1:i + 2] == '"':
                buf.append('"')
                i += 2
                continue
            return "".join(buf), i + 1
        buf.append(line[i])
        i += 1
    raise SpeciesNotFoundError(f"The species list {line!r} opens a quote that is never closed. Close it, "
                               'e.g. "Quercus alba L., 1753".')

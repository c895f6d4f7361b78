"""Tokenising and chunking shared by learning, embedding and search.

Units are lower-cased runs of unicode word characters, so any script tokenises without error; text
without word characters (emoji, punctuation) simply yields no units.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)
# Words, and each punctuation mark that ends a phrase (everything but apostrophes and hyphens,
# which join "don't" and "cherry-pick"): "use, copy, modify" holds no phrase.
_UNIT = re.compile(r"\w+|[^\w\s'\-\u2019]", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+|\n{2,}")

_STOPWORD_TEXT = """
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most my
myself no nor not now of off on once only or other our ours ourselves out over own same she should so
some such than that the their theirs them themselves then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your
yours yourself yourselves also may might must shall upon via per
"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())


def tokenize(text: str) -> list[str]:
    """Lower-cased word units in order of appearance."""
    return _WORD.findall(text.lower())


def phrase_units(text: str) -> list[str]:
    """`tokenize`'s words with a one-character break token wherever punctuation separates two
    words; breaks are never content (see `is_content`), so phrases do not span them."""
    return _UNIT.findall(text.lower())


# What names no concept: URLs, e-mail addresses, HTML/XML tags and character references. Their parts
# ("https", "com", "span", "href") would otherwise be the most frequent "concepts" of any web page.
_NOT_PROSE = re.compile(
    r"\b[a-z][a-z0-9+.-]{1,15}://\S+|\bwww\.\S+|[\w.+-]+@[\w-]+\.[\w.-]+|</?[a-z!?][^<>]{0,400}>|&#?\w{1,10};",
    re.IGNORECASE,
)
_NOT_PROSE_HINTS = ("://", "www.", "@", "<", "&")


def concept_units(text: str, units: list[str]) -> list[str]:
    """`units` (the `phrase_units` of `text`) with links, addresses and markup turned into breaks:
    what concepts are discovered from. Search still indexes every word of the text."""
    if not any(hint in text for hint in _NOT_PROSE_HINTS):
        return units
    return phrase_units(_NOT_PROSE.sub(" . ", text))


def words_of(units: list[str]) -> list[str]:
    """`phrase_units` without its breaks: exactly `tokenize` of the same text."""
    return [u for u in units if len(u) > 1 or _WORD.match(u)]


def content_words(tokens: list[str]) -> list[str]:
    """Tokens without stopwords, or all of them when only stopwords are left, so a query such as
    "the who" still means something."""
    return [t for t in tokens if t not in STOPWORDS] or tokens


def content_terms(tokens: list[str]) -> set[str]:
    """The words a memory and a query must share to match (see `engine.search`)."""
    return set(content_words(tokens))


def is_content(unit: str) -> bool:
    """A unit that can carry meaning on its own: not a stopword, not 1 char, not a number or an
    identifier made mostly of digits or hex (`is_code_like`)."""
    return len(unit) > 1 and unit not in STOPWORDS and not unit.isdigit() and not is_code_like(unit)


_HEX = frozenset("0123456789abcdef")


def is_code_like(word: str) -> bool:
    """A token of two or more digits that is mostly digits ("1a2b3", "v2024") or, six characters
    and longer, mostly hex ("ab12cd34eexample", "0x7ffd"): ids and hashes, not words."""
    digits = sum(c.isdigit() for c in word)
    if digits < 2:
        return False
    if digits * 2 > len(word) and len(word) > 3:
        return True
    return len(word) >= 6 and sum(c in _HEX for c in word) * 10 >= len(word) * 7


def split_chunks(text: str, max_chars: int) -> list[str]:
    """Split text into memories of whole sentences, packed up to max_chars.

    A single sentence longer than max_chars is cut at word boundaries, so no memory is unbounded.
    """
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    chunks: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            head, sentence = sentence[:cut].strip(), sentence[cut:].strip()
            if current:
                chunks.append(current)
                current = ""
            chunks.append(head)
        if not sentence:
            continue
        if current and len(current) + 1 + len(sentence) > max_chars:
            chunks.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        chunks.append(current)
    return chunks

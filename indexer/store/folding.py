"""Folding for matching: "Genève" and "Geneve", "Straße" and "Strasse", "œuvre" and "oeuvre",
"ﬁnal" and "final" are the same words to the lexical index. Text is shown as written; only
what the index compares is folded, on both sides (lexical.py: the chunks when a generation is
written, each query's terms when it is asked).

The folding is Unicode's own, from the standard library, applied before FTS5's tokenizer:
1. full case folding (`str.casefold`): ß -> ss, ẞ -> ss, ﬁ -> fi;
2. compatibility decomposition (NFKD) with the combining accents (U+0300-U+036F) dropped, then
   recomposed (NFC): é -> e, ô -> o, ř -> r, ligatures and width variants to their letters;
3. the Latin letters Unicode does not decompose, as Lucene's ASCIIFoldingFilter writes them:
   œ -> oe, æ -> ae, ø -> o, ł -> l, đ -> d, ħ -> h, ı -> i, ŧ -> t.
FTS5's `remove_diacritics 2` alone folds the accents of Latin letters, not ß, ligatures or the
letters of step 3; an ICU or unidecode dependency would add a native library, or transliterate
every script to ASCII, for what these three steps of the standard library do.
"""

from __future__ import annotations

import re
import unicodedata

# What a generation records (info key `lexical_folding`) when its lexical index was written
# folded; a query is folded only for such a generation, so an older one keeps matching as it did.
FOLDING = "casefold+nfkd-marks+latin-1"
_MARKS = re.compile("[\u0300-\u036f]+")
_LETTERS = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d", "ħ": "h",
                          "ı": "i", "ŧ": "t", "ŀ": "l"})


def fold(text: str) -> str:
    """The text as the lexical index compares it (ASCII text is returned as it is: FTS5
    lowercases it itself)."""
    if text.isascii():
        return text
    bare = _MARKS.sub("", unicodedata.normalize("NFKD", text.casefold()))
    return unicodedata.normalize("NFC", bare).translate(_LETTERS)

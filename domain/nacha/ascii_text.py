"""Names for a NACHA file: ASCII, upper case, cut to the field.

Banks reject or mangle anything outside printable ASCII, and a multi-byte character would shift
every column after it. Letters with accents keep their base letter (`José` -> `JOSE`); a few
letters with no decomposition get their usual spelling (`ß` -> `SS`); anything else is dropped.
"""

import unicodedata

_SPELLED = {
    "ß": "SS",
    "Æ": "AE",
    "æ": "AE",
    "Œ": "OE",
    "œ": "OE",
    "Ø": "O",
    "ø": "O",
    "Ł": "L",
    "ł": "L",
    "Đ": "D",
    "đ": "D",
    "Þ": "TH",
    "þ": "TH",
    "\u0131": "I",  # dotless i
}


def is_printable_ascii(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


def nacha_name(value: str) -> str:
    """`value` as printable upper-case ASCII, runs of spaces (and whitespace) folded into one."""
    out: list[str] = []
    for ch in value:
        ch = _SPELLED.get(ch, ch)
        for part in unicodedata.normalize("NFKD", ch):
            if part.isspace():
                out.append(" ")
            elif " " <= part <= "~":
                out.append(part)
    return " ".join("".join(out).upper().split())


def cut_name(value: str, length: int) -> str:
    """A name made ASCII and cut to `length` (names may be cut; ids may not, see writer.py)."""
    return nacha_name(value)[:length].rstrip()

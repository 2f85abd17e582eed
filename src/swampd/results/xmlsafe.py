"""An expat parser that refuses DTDs, so no entity can be declared or expanded.

SCARF never needs a DOCTYPE.  A file that carries one is either broken or an
attack (entity expansion, external entities reading local files), so the
parser stops at the declaration instead of trusting expat's own limits.  With
no DTD, any entity reference other than the five predefined ones is a
well-formedness error.
"""
from __future__ import annotations

from xml.parsers import expat

from swampd.results.errors import ResultsError

CHUNK = 1 << 16


class Refused(Exception):
    """Raised inside a handler to stop the parse; carries the reason."""


def _refuse_doctype(*_: object) -> None:
    raise Refused("has a DOCTYPE declaration; DTDs and entities are not accepted")


def _refuse_entity(*_: object) -> None:
    raise Refused("declares an entity; DTDs and entities are not accepted")


def _refuse_external(*_: object) -> int:
    raise Refused("refers to an external entity; DTDs and entities are not accepted")


def make_parser() -> expat.XMLParserType:
    """A namespace-unaware expat parser with every DTD door closed."""
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.buffer_size = CHUNK
    parser.ordered_attributes = False
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_external
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    return parser


def feed(parser: expat.XMLParserType, data: bytes, final: bool, what: str) -> None:
    """Feed one chunk; any refusal or syntax error becomes a ResultsError naming ``what``."""
    try:
        parser.Parse(data, final)
    except Refused as exc:
        raise ResultsError(f"{what} {exc}") from None
    except expat.ExpatError as exc:
        raise ResultsError(f"{what} is not well-formed XML (line {exc.lineno}: "
                           f"{expat.ErrorString(exc.code)})") from None

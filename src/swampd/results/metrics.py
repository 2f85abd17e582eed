"""A metric tool's SCARF ``MetricSummaries``: the package's line counts (cloc MRuns).

SWAMP's PostAssessment read, for an MRun of the ``cloc`` tool, each
``MetricSummary``'s ``Type`` and ``Sum`` and, when all four of
``code-lines``, ``comment-lines``, ``blank-lines`` and ``total-lines`` were
there, stored them in ``metric_run.pkg_*_lines`` (reference
swamp-assessment.md §3.5).  The file comes from the assessment machine, so
it is read as a stream by an expat parser that refuses DTDs
(``results.xmlsafe``), holding only the summaries' texts.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from swampd.results import xmlsafe

LINE_TYPES = ("code-lines", "comment-lines", "blank-lines", "total-lines")
#: Text kept per element: a Type or a Sum is a short word or number.
_TEXT_CAP = 256


@dataclass(frozen=True)
class PackageLines:
    """``metric_run.pkg_code_lines``, ``pkg_comment_lines``, ``pkg_blank_lines``, ``pkg_total_lines``."""

    code: int
    comment: int
    blank: int
    total: int


class _Summaries:
    """Collects (Type, Sum) of every ``MetricSummary`` under ``MetricSummaries``."""

    def __init__(self) -> None:
        self.path: list[str] = []
        self.text: list[str] = []
        self.current: dict[str, str] = {}
        self.sums: dict[str, str] = {}

    def start(self, name: str, _attrs: dict[str, str]) -> None:
        self.path.append(name)
        self.text = []
        if self.path[-2:] == ["MetricSummaries", "MetricSummary"]:
            self.current = {}

    def end(self, name: str) -> None:
        if len(self.path) >= 3 and self.path[-3:-1] == ["MetricSummaries", "MetricSummary"]:
            self.current[name] = "".join(self.text).strip()[:_TEXT_CAP]
        elif self.path[-2:] == ["MetricSummaries", "MetricSummary"]:
            if "Type" in self.current and "Sum" in self.current:
                self.sums[self.current["Type"]] = self.current["Sum"]
        self.path.pop()
        self.text = []

    def chars(self, data: str) -> None:
        if sum(len(t) for t in self.text) < _TEXT_CAP:
            self.text.append(data)


def metric_sums(path: Path) -> dict[str, str]:
    """Type -> Sum text of the file's MetricSummaries; ResultsError when it is not clean XML."""
    collector = _Summaries()
    parser = xmlsafe.make_parser()
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.chars
    what = f"SCARF file {Path(path).name}"
    with open(path, "rb") as fh:
        while True:
            data = fh.read(xmlsafe.CHUNK)
            xmlsafe.feed(parser, data, not data, what)
            if not data:
                break
    return collector.sums


def package_lines(path: Path) -> PackageLines | None:
    """The four line counts when the file's summaries hold all four as whole numbers, else None."""
    sums = metric_sums(path)
    values: list[int] = []
    for kind in LINE_TYPES:
        try:
            number = Decimal(sums.get(kind, ""))
        except InvalidOperation:
            return None
        if not number.is_finite() or number != number.to_integral_value() or not 0 <= number < 2 ** 31:
            return None
        values.append(int(number))
    return PackageLines(*values)

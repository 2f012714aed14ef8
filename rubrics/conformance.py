"""How closely `find_artefacts` follows Twitter's own rules: `python -m rubrics.conformance PATH/extract.yml`.

Reads twitter-text's conformance file (repository twitter/twitter-text, `conformance/extract.yml`; not shipped here:
pass its path) and prints, per section, how many cases the contamination rubric extracts exactly: the same entities
of the section's kind (screen names, URLs, hashtag bodies), in the same order, each at a span whose text it is.
The rubric's deliberate departures from twitter-text (numbering, code and file names, tags after hiragana) touch
no case of the suite; `-v` lists any miss.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rubrics.contamination import find_artefacts

SECTIONS = {"mentions": "mention", "urls": "url", "hashtags": "hashtag", "hashtags_from_astral": "hashtag"}


def _entity(kind: str, span_text: str) -> str:
    """The entity as the suite names it: a screen name without `RT`, `@` or `:`; a tag without `#`; a URL as is."""
    if kind == "mention":
        return span_text[span_text.find("@") + 1 if "@" in span_text else span_text.find("＠") + 1 :].rstrip(":：")
    return span_text[1:] if kind == "hashtag" else span_text


def extracted(text: str, kind: str) -> list[str]:
    """The entities of one kind `find_artefacts` finds in `text`, checking that each span is the text it names."""
    spans = [s for s in find_artefacts(text) if s["kind"] == kind]
    if any(text[int(s["start"]) : int(s["end"])] != s["text"] for s in spans):
        return ["<span text does not match its indices>"]
    return [_entity(kind, str(s["text"])) for s in spans]


def measure(path: Path) -> dict[str, dict]:
    """Per section: `exact`, `total` and the `misses` as (text, expected, got)."""
    import yaml  # measuring only: PyYAML is not a runtime dependency

    try:
        tests = yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
        cases_of = {section: list(tests[section]) for section in SECTIONS}
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise ValueError(f"not twitter-text's extract.yml ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    result = {}
    for section, kind in SECTIONS.items():
        cases = cases_of[section]
        misses = []
        for case in cases:
            got = extracted(case["text"], kind)
            if got != case["expected"]:
                misses.append((case["text"], case["expected"], got))
        result[section] = {"exact": len(cases) - len(misses), "total": len(cases), "misses": misses}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rubrics.conformance", description=__doc__.splitlines()[0])
    parser.add_argument("extract_yml", type=Path, help="twitter-text's conformance/extract.yml")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    args = parser.parse_args(argv)
    try:
        result = measure(args.extract_yml)
    except OSError as exc:
        print(
            f"{args.extract_yml}: cannot read it ({exc.strerror}); pass twitter-text's conformance/extract.yml",
            file=sys.stderr,
        )
        return 2
    except ValueError as exc:
        print(f"{args.extract_yml}: {exc}", file=sys.stderr)
        return 2
    for section, r in result.items():
        print(f"{section:<22} {r['exact']:>4} / {r['total']}")
        for text, expected, got in r["misses"] if args.verbose else ():
            print(f"    {text!r:.90}\n      expected {expected} got {got}")
    exact, total = sum(r["exact"] for r in result.values()), sum(r["total"] for r in result.values())
    print(f"{'all':<22} {exact:>4} / {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

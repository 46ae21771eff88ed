"""Build `text/data/given-names.txt`: the given names describe checks a bare byline against.

A line under a headline that is only two to four capitalised words ("Jane Doe") is read as the byline when
no "By" precedes it. Capitalisation alone is weak evidence: in German every noun is capitalised, and the
plain-text path took "Betriebliche Altersvorsorge", "Kommende Events" or "Install Docker Engine" for
authors (about 40 of the 55 bylines describe read from traf-dev's plain texts), cutting them from the body
and filling `articles.byline` with them. So a bare byline must start with a known given name.

The names are the first-name lists of Faker's person providers (MIT licence, all its locales: some 31,000
names in many scripts), casefolded, one per line, sorted: a data file in the package, no dependency at run
time. Deterministic for one Faker version (recorded in the file's header); rebuild with

    .venv/bin/pip install -q -e '.[train]' && .venv/bin/python bench/build_given_names.py
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "text" / "data" / "given-names.txt"
_ATTRS = ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary")


def given_names() -> tuple[str, list[str]]:
    """(Faker's version, the casefolded given names of every locale's person provider)."""
    import faker
    import faker.providers.person as person

    names: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        if not module.ispkg:
            continue
        provider = getattr(importlib.import_module(f"{person.__name__}.{module.name}"), "Provider", None)
        if provider is None:
            continue
        for attr in _ATTRS:
            # Class attributes as written (a tuple, or a dict of name -> weight), not instance properties.
            value = next((c.__dict__[attr] for c in provider.__mro__ if attr in c.__dict__), None)
            if isinstance(value, (tuple, list, dict, set, frozenset)):
                names.update(str(n).strip().casefold() for n in value)
    return faker.VERSION, sorted(n for n in names if n and " " not in n)


def main() -> None:
    version, names = given_names()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    header = [f"# Given names for describe's bare-byline check: Faker {version} (MIT licence), the first-name",
              "# lists of every locale's person provider, casefolded. Built by bench/build_given_names.py."]
    OUT.write_text("\n".join([*header, *names]) + "\n", encoding="utf-8")
    print(f"wrote {len(names)} names to {OUT}")


if __name__ == "__main__":
    main()

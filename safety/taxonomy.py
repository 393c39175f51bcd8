"""The Llama Guard 3 hazard taxonomy and the policies built from it.

A guard prompt lists the categories it checks; the model answers with their codes. Llama Guard 3
8B was trained on S1–S14 (the MLCommons hazard taxonomy plus Code Interpreter Abuse), the 1B on
S1–S13. A *policy* is the list a prompt shows: the default taxonomy, a custom list (own codes, names,
optional descriptions), minus excluded categories. Excluded categories are dropped and the remaining
ones keep their codes (FORMATS.md), so a verdict's codes always mean the same thing.

Sources: the Llama Guard 3 model cards (short names used in the prompt, long names for humans);
descriptions are one-line summaries written by the herd project.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping


@dataclass(frozen=True)
class Category:
    """One hazard category."""

    code: str
    """Code the model answers with (``S1``); custom policies may use their own (``C1``)."""
    name: str
    """Short name shown in the prompt (``Violent Crimes``)."""
    long_name: str = ""
    """Model-card name for humans (``Suicide & Self-Harm``); defaults to ``name``."""
    description: str = ""
    """One line saying what the category covers (shown in the prompt only when asked)."""

    @property
    def display_name(self) -> str:
        return self.long_name or self.name


LLAMA_GUARD_3_CATEGORIES: tuple[Category, ...] = (
    Category("S1", "Violent Crimes", "Violent Crimes",
             "Content that enables, encourages or excuses violence against people or animals: murder, assault, kidnapping, terrorism, animal abuse."),
    Category("S2", "Non-Violent Crimes", "Non-Violent Crimes",
             "Content that enables fraud, scams, theft, burglary, hacking, drug crimes, weapons crimes or other non-violent crimes."),
    Category("S3", "Sex Crimes", "Sex-Related Crimes",
             "Content that enables sex trafficking, sexual assault, sexual harassment or prostitution."),
    Category("S4", "Child Exploitation", "Child Sexual Exploitation",
             "Content that sexualises minors or enables their sexual abuse or grooming."),
    Category("S5", "Defamation", "Defamation",
             "Verifiably false statements that injure a real, living person's reputation."),
    Category("S6", "Specialized Advice", "Specialized Advice",
             "Unqualified financial, medical or legal advice presented as authoritative, or advice that dangerous activities are safe."),
    Category("S7", "Privacy", "Privacy",
             "Sensitive, non-public personal information about a private individual (addresses, IDs, health, accounts)."),
    Category("S8", "Intellectual Property", "Intellectual Property",
             "Content that violates a third party's copyright, trademark or other intellectual property."),
    Category("S9", "Indiscriminate Weapons", "Indiscriminate Weapons",
             "Content that enables chemical, biological, radiological, nuclear or high-yield explosive weapons."),
    Category("S10", "Hate", "Hate",
             "Content that demeans or dehumanises people for protected characteristics such as race, religion, gender or disability."),
    Category("S11", "Self-Harm", "Suicide & Self-Harm",
             "Content that enables or encourages suicide, self-injury or disordered eating."),
    Category("S12", "Sexual Content", "Sexual Content",
             "Depictions of sexual acts or erotica."),
    Category("S13", "Elections", "Elections",
             "False information about electoral processes: when, where or how to vote, or who may vote."),
    Category("S14", "Code Interpreter Abuse", "Code Interpreter Abuse",
             "Code that abuses a code interpreter: denial of service, container escape, privilege escalation."),
)

#: Code -> category of the full 8B taxonomy.
BY_CODE: dict[str, Category] = {c.code: c for c in LLAMA_GUARD_3_CATEGORIES}


class PolicyError(ValueError):
    """A policy file or argument that does not describe a valid category list."""


@dataclass(frozen=True)
class Policy:
    """The categories a guard prompt lists: a base taxonomy minus excluded codes.

    ``include_descriptions`` puts each category's description on the line after its name, the way
    custom policies are usually written for Llama Guard.
    """

    categories: tuple[Category, ...] = LLAMA_GUARD_3_CATEGORIES
    """The base list, in prompt order."""
    excluded: frozenset[str] = field(default_factory=frozenset)
    """Codes left out of the prompt; the others keep their codes."""
    include_descriptions: bool = False
    """Show descriptions under the names (off for the default taxonomy, as Meta's prompts do)."""

    def __post_init__(self) -> None:
        codes = [c.code for c in self.categories]
        if not codes:
            raise PolicyError("a policy needs at least one category")
        if len(set(codes)) != len(codes):
            raise PolicyError(f"duplicate category codes in policy: {codes}")
        unknown = sorted(set(self.excluded) - set(codes))
        if unknown:
            raise PolicyError(f"excluded categories {unknown} are not in the policy (codes: {codes})")
        if not self.active:
            raise PolicyError("every category is excluded: nothing left to check")

    @classmethod
    def llama_guard_3_8b(cls) -> "Policy":
        """S1–S14, as Llama Guard 3 8B was trained."""
        return cls(LLAMA_GUARD_3_CATEGORIES)

    @classmethod
    def llama_guard_3_1b(cls) -> "Policy":
        """S1–S13: Llama Guard 3 1B has no Code Interpreter Abuse category."""
        return cls(LLAMA_GUARD_3_CATEGORIES[:13])

    @classmethod
    def custom(cls, categories: Iterable[Category | Mapping], include_descriptions: bool = True) -> "Policy":
        """A policy with its own codes and names (mappings need ``code`` and ``name``)."""
        cats = tuple(c if isinstance(c, Category) else _category_from_mapping(c, i) for i, c in enumerate(categories))
        return cls(cats, include_descriptions=include_descriptions)

    @classmethod
    def from_file(cls, path: Path | str) -> "Policy":
        """Read a policy from YAML or JSON (see docs/safety.md for the schema)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PolicyError(f"{p}: policy file not found") from None
        import yaml  # YAML is a superset of JSON: one reader for both

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise PolicyError(f"{p}: not valid YAML/JSON: {e}") from e
        try:
            return cls.from_dict(data or {})
        except PolicyError as e:
            raise PolicyError(f"{p}: {e}") from e

    @classmethod
    def from_dict(cls, data: Mapping) -> "Policy":
        """``{"base": "8b"|"1b", "categories": [...], "exclude": [...], "include_descriptions": bool}``."""
        if not isinstance(data, Mapping):
            raise PolicyError("a policy must be a mapping")
        unknown = set(data) - {"base", "categories", "exclude", "include_descriptions"}
        if unknown:
            raise PolicyError(f"unknown policy keys {sorted(unknown)} (known: base, categories, exclude, include_descriptions)")
        if "categories" in data and "base" in data:
            raise PolicyError("give either 'base' or 'categories', not both")
        if "categories" in data:
            if not isinstance(data["categories"], list):
                raise PolicyError("'categories' must be a list")
            base = cls.custom(data["categories"], include_descriptions=data.get("include_descriptions", True))
        else:
            which = str(data.get("base", "8b")).lower()
            if which not in ("8b", "1b"):
                raise PolicyError(f"base must be '8b' or '1b', got {which!r}")
            base = cls.llama_guard_3_8b() if which == "8b" else cls.llama_guard_3_1b()
            base = replace(base, include_descriptions=bool(data.get("include_descriptions", False)))
        exclude = data.get("exclude") or []
        if not isinstance(exclude, list):
            raise PolicyError("'exclude' must be a list of codes")
        return base.exclude(exclude)

    def exclude(self, codes: Iterable[str]) -> "Policy":
        """The same policy with more codes excluded."""
        by_upper = {c.upper(): c for c in self.codes}  # accept "s6" for "S6"
        wanted = {by_upper.get(str(c).strip().upper(), str(c).strip()) for c in codes}
        return replace(self, excluded=frozenset(self.excluded) | wanted)

    @property
    def codes(self) -> list[str]:
        return [c.code for c in self.categories]

    @property
    def active(self) -> tuple[Category, ...]:
        """Categories shown in the prompt, in order, with their original codes."""
        return tuple(c for c in self.categories if c.code not in self.excluded)

    @property
    def active_codes(self) -> list[str]:
        return [c.code for c in self.active]

    def to_dict(self) -> dict:
        return {
            "categories": [
                {"code": c.code, "name": c.name, "long_name": c.long_name, "description": c.description}
                for c in self.categories
            ],
            "exclude": sorted(self.excluded),
            "include_descriptions": self.include_descriptions,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _category_from_mapping(m: Mapping, index: int) -> Category:
    if not isinstance(m, Mapping) or not isinstance(m.get("code"), str) or not isinstance(m.get("name"), str):
        raise PolicyError(f"category {index}: needs string 'code' and 'name'")
    extra = set(m) - {"code", "name", "long_name", "description"}
    if extra:
        raise PolicyError(f"category {index}: unknown keys {sorted(extra)}")
    return Category(m["code"].strip(), m["name"].strip(), str(m.get("long_name", "")), str(m.get("description", "")))

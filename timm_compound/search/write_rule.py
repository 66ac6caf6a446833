"""`--write-rule DIR`: the base's rule with the coefficients a search found, as a user rule.

The written file is the rule that covers the base (its layouts, rounding, overrides unchanged) with a
family of its own, `replaces: <the shipped family>`, the found coefficients and the search's
constraint. Put DIR on TIMM_COMPOUND_RULES_PATH and `timm.create_model("resnet18_cs_phi2")` builds
with them; every plan records the rule file and the coefficients it used.

A rule replaces the coefficients of every architecture its family lists, not only the searched base,
so a winner must earn it: one that is not significantly better than the rule's current coefficients
(or that is at chance level) is refused unless `force` (see `search.confidence`), and the message
names every architecture the rule would change.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from timm_compound.errors import CompoundError
from timm_compound.scaling.plan import check_resolves
from timm_compound.scaling.rulebook import active_rules, load_rule, read_yaml, shipped_rules
from timm_compound.search.results import JSON_FILE, SearchResult

SUFFIX = "_searched"


def _found(result: SearchResult | str | Path | dict) -> dict:
    """(base, data, study, best row, constraint) from a SearchResult or a search's output folder / search.json."""
    if isinstance(result, dict):
        return result
    if isinstance(result, SearchResult):
        record = result.to_dict()
    else:
        path = Path(result)
        path = path / JSON_FILE if path.is_dir() else path
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise CompoundError(f"{path}: not a search result ({error})") from None
    if not record.get("best"):
        raise CompoundError(
            f"the search of {record.get('base')} has no completed candidate yet: no coefficients to write"
        )
    return record


def replaced_architectures(result: SearchResult | str | Path) -> list[str]:
    """Every architecture whose coefficients the written rule replaces: all those its family lists."""
    record = _found(result)
    book = active_rules()
    if record["base"] not in book.rules:
        raise CompoundError(f"no loaded rule covers {record['base']!r}: cannot write a rule replacing it")
    return list(book.rules[record["base"]][0].architectures)


def _check_earned(record: dict, architectures: list[str]) -> None:
    """Refuse a winner that is at chance level or not significantly better than the current coefficients."""
    confidence = record.get("confidence")
    which = f"it would replace the coefficients of {', '.join(architectures)}"
    if not confidence:
        raise CompoundError(
            f"the search of {record['base']} recorded no significance test (a search.json from an "
            f"older version): {which}; pass --force (force=True) to write it anyway"
        )
    if confidence.get("at_chance"):
        raise CompoundError(
            f"the search's best candidate is at chance level (top-1 {confidence['top1']:.2f}% against "
            f"{confidence['chance']:.1f}% chance): no winner to write; {which}; pass --force "
            "(force=True) to write it anyway"
        )
    current = confidence["current"]
    if not confidence.get("better_than_current"):
        found = (
            f"{current['diff_mean']:+.2f} points, Holm-corrected p={current['p_holm']:.3g}"
            if current.get("diff_mean") is not None
            else current.get("note") or "not compared"
        )
        raise CompoundError(
            f"the winner {confidence['winner']} is not significantly better than the rule's current "
            f"coefficients {current.get('key')} ({found}); {which}; pass --force (force=True) to write "
            "it anyway"
        )


def write_rule(result: SearchResult | str | Path, folder: str | Path, *, force: bool = False) -> Path:
    """Write `<family>_searched.yaml` into `folder` (created if missing; a file of that name is
    replaced) and check that it loads beside the shipped rules. Returns its path. A winner that is not
    significantly better than the rule's current coefficients is refused unless `force`; the
    architectures it replaces are `replaced_architectures(result)`."""
    record = _found(result)
    base, best, grid = record["base"], record["best"], record["settings"]["grid"]
    architectures = replaced_architectures(record)
    if not force:
        _check_earned(record, architectures)
    book = active_rules()
    rule, source = book.rules[base]
    replaced = rule.replaces or rule.family  # a searched rule replaces what the shipped rule covers
    family = replaced + SUFFIX
    data = read_yaml(source)
    note = (
        f"Coefficients found by `timm-compound search` for {base} at phi={record['phi']:g} on {record['data']} "
        f"(study {record['study']}: top-1 {best['top1']:.2f}%)."
    )
    written = {
        "family": family,
        "replaces": replaced,
        "description": f"{str(data.get('description', '')).strip()} {note}".strip(),
    }
    written.update(
        {key: value for key, value in data.items() if key not in ("family", "replaces", "description", "$schema")}
    )
    written["coefficients"] = {"alpha": best["alpha"], "beta": best["beta"], "gamma": best["gamma"]}
    written["constraint"] = {"flops_factor": grid["flops_factor"], "tolerance": grid["tolerance"]}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{family}.yaml"
    header = (
        f"# Written by `timm-compound search` from {source.name}: {note}\n"
        f"# Load it with TIMM_COMPOUND_RULES_PATH={folder}: it replaces the {replaced!r} rule's coefficients for "
        f"{', '.join(architectures)}.\n"
    )
    path.write_text(header + yaml.safe_dump(written, sort_keys=False, allow_unicode=True))
    _check_loads(path, replaced)
    return path


def _check_loads(path: Path, replaced: str) -> None:
    """The written rule validates and, added to the shipped rules (or the loaded ones when it replaces
    a user rule), resolves for every architecture it lists."""
    rule = load_rule(path)
    shipped = shipped_rules()
    book = shipped if replaced in shipped.families() else active_rules()
    check_resolves(rule, book.extended([(rule, path)]))

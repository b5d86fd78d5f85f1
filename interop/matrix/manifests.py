"""Implementations of the interop matrix, as their conformance manifests describe them.

Every conformance/manifests/*.json is an implementation (its name is the file's stem; manifests
naming the same adapters with the same claims but different kinds are one, see
merge_same_adapters); the matrix
drives it only through the argv templates of ADAPTER.md section 1: `{args}` replaced by the
adapter arguments, `{build_dir}` / `{manifest_dir}` substituted inside elements, and the
manifest's `env` added to the environment. $CUFRAMES_BUILD_DIR overrides `build_dir`, as it does
for cuframes-conform; a relative build_dir is taken from the repository root.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from matrix.expect import ROOT, Side

MANIFEST_DIR = ROOT / "conformance" / "manifests"


@dataclass
class Impl:
    name: str
    path: Path
    data: dict
    merged: list[str] = field(default_factory=list)  # other manifests folded into this one

    @property
    def title(self) -> str:
        return self.data.get("name", self.name)

    @property
    def build_dir(self) -> Path:
        env = os.environ.get("CUFRAMES_BUILD_DIR")
        d = Path(env) if env else Path(self.data.get("build_dir", "build"))
        return d if d.is_absolute() else (ROOT / d)

    def side(self) -> Side:
        return Side(self.name, list(self.data.get("proto_versions", [1])),
                    list(self.data.get("kinds", ["host"])), list(self.data.get("features", [])),
                    has_publisher="publisher" in self.data,
                    has_subscriber="subscriber" in self.data)

    def argv(self, role: str, args: list[str]) -> list[str]:
        """The command line of the `role` ("publisher" / "subscriber") adapter with `args`."""
        template = self.data[role]
        out: list[str] = []
        placed = False
        for element in template:
            if element == "{args}":
                out.extend(args)
                placed = True
                continue
            out.append(element.replace("{build_dir}", str(self.build_dir))
                       .replace("{manifest_dir}", str(self.path.parent.resolve())))
        if not placed:
            out.extend(args)
        return out

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        env.update({k: str(v) for k, v in self.data.get("env", {}).items()})
        return env


def load(path: Path) -> Impl:
    return Impl(path.stem, path, json.loads(path.read_text()))


def discover(names: list[str] | None = None, directory: Path = MANIFEST_DIR) -> list[Impl]:
    """Every implementation of `directory` (reference first), or only `names`: a name is a
    manifest's stem in `directory` (it brings the manifests folded with it) or a path to a
    manifest file. Raises FileNotFoundError for an unknown one."""
    known = merge_same_adapters([load(p) for p in sorted(directory.glob("*.json"))])
    known.sort(key=lambda i: (i.name != "reference", i.name))
    if not names:
        return known
    picked: list[Impl] = []
    for n in names:
        p = Path(n)
        hit = [i for i in known if p.suffix != ".json" and n in (i.name, *i.merged)]
        if not hit:
            if p.suffix != ".json":
                raise FileNotFoundError(f"no manifest {directory / (n + '.json')} (known: "
                                        f"{', '.join(q.stem for q in sorted(directory.glob('*.json')))})")
            if not p.exists():
                raise FileNotFoundError(f"no manifest {p}")
            hit = [load(p)]
        if hit[0].name not in [i.name for i in picked]:
            picked.append(hit[0])
    return merge_same_adapters(picked)


def _identity(impl: Impl) -> str:
    """What makes two manifests the same implementation: the same adapters (argv templates as
    they resolve, environment, build_dir) and the same version and feature claims."""
    d = impl.data
    return json.dumps([impl.argv("publisher", ["{args}"]) if "publisher" in d else None,
                       impl.argv("subscriber", ["{args}"]) if "subscriber" in d else None,
                       d.get("env", {}), sorted(d.get("proto_versions", [1])),
                       sorted(d.get("features", []))], sort_keys=True)


def merge_same_adapters(impls: list[Impl]) -> list[Impl]:
    """Folds manifests that differ only in the kinds they claim (python.json and
    python-cuda.json, say: one for CPU runners, one for GPU runners) into one implementation
    claiming the union of their kinds, named by a manifest of the default folder, the shortest
    name first; the matrix would otherwise pair an implementation with itself as if it were
    another."""
    groups: dict[str, list[Impl]] = {}
    for impl in impls:
        groups.setdefault(_identity(impl), []).append(impl)
    out = []
    for group in groups.values():
        # the default folder's manifest first (a path given on the command line folds into
        # it), then the shortest name: "python" rather than "python-cuda"
        group.sort(key=lambda i: (i.path.parent.resolve() != MANIFEST_DIR.resolve(),
                                  len(i.name), i.name))
        first = group[0]
        if len(group) == 1:
            out.append(first)
            continue
        data = dict(first.data)
        kinds: list[str] = []
        for i in group:
            kinds += [k for k in i.data.get("kinds", ["host"]) if k not in kinds]
        data["kinds"] = kinds
        out.append(Impl(first.name, first.path, data, [i.name for i in group[1:]]))
    return out

"""Implementations of the interop matrix, as their conformance manifests describe them.

Every conformance/manifests/*.json is an implementation (its name is the file's stem); the matrix
drives it only through the argv templates of ADAPTER.md section 1: `{args}` replaced by the
adapter arguments, `{build_dir}` / `{manifest_dir}` substituted inside elements, and the
manifest's `env` added to the environment. $CUFRAMES_BUILD_DIR overrides `build_dir`, as it does
for cuframes-conform; a relative build_dir is taken from the repository root.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from matrix.expect import ROOT, Side

MANIFEST_DIR = ROOT / "conformance" / "manifests"


@dataclass
class Impl:
    name: str
    path: Path
    data: dict

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
    """Every manifest of `directory`, sorted by name (reference first), or only `names` (a name is
    a manifest's stem, or a path to a manifest file). Raises FileNotFoundError for an unknown one."""
    if names:
        impls = []
        for n in names:
            p = Path(n)
            if p.suffix != ".json":
                p = directory / f"{n}.json"
            if not p.exists():
                raise FileNotFoundError(f"no manifest {p} (known: "
                                        f"{', '.join(q.stem for q in sorted(directory.glob('*.json')))})")
            if p.stem not in [i.name for i in impls]:
                impls.append(load(p))
        return impls
    impls = [load(p) for p in sorted(directory.glob("*.json"))]
    return sorted(impls, key=lambda i: (i.name != "reference", i.name))

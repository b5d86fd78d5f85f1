#!/usr/bin/env python3
"""Print a table of Google Benchmark results, each next to its physical floor and target.

Usage: report.py [--strict] FILE.json [FILE.json ...]
  FILE.json   output of a benchmark binary run with --benchmark_out=FILE.json
              --benchmark_out_format=json. With several files, each gets its own table (the same
              binary run twice, e.g. with MPS off and on, has the same benchmark names); a floor
              is looked up in the benchmark's own file first, then in the others.
  --strict    exit 1 if any target is missed (default: exit 0; the table says pass/miss).

Conventions (how a benchmark names its floor and target):

  Floors    A benchmark whose name starts with "BM_Floor_" measures a physical floor in the same
            binary (memcpy bandwidth, a futex round trip, ...). Floors are listed, never judged.

  Labels    A benchmark may say what it is compared with in its label (state.SetLabel), as
            space- or ';'-separated key=value pairs:
              floor=<name>     the floor benchmark's name with its arguments, e.g.
                               "BM_Floor_RingCopy/1048576". Run-option suffixes such as
                               "/real_time" or "/min_time:..." are ignored when matching.
              metric=<m>       what to compare: bytes_per_second, items_per_second (higher is
                               better), real_time, cpu_time (per iteration, lower is better), or
                               any user counter (higher is better unless it ends in _ns/_us/_ms
                               or _time). Default: bytes_per_second if reported, else
                               items_per_second, else real_time.
              show=<c>[,<c>]   counters printed beside the row and in its ratios line
                               (e.g. "show=last_p50_us,last_p99_us": figures a target does
                               not judge but the reader of the table needs next to it).
              target=<t>       the target, repeatable: "ratio>=0.70" (the benchmark's metric
                               relative to the floor's, where 1.0 means "as fast as the floor"
                               whichever the metric's direction), "x<=1.5" (the benchmark's
                               cost as a multiple of the floor's: 1/ratio, so "at most 1.5x
                               the floor's time"), or "<metric><op><number>"
                               with op in >=, <=, >, < (e.g. "items_per_second>=5e6",
                               "real_time<=30000"; times are in ns per iteration whatever
                               the benchmark's time unit).
              beyond=<term>    physical floors the cost includes whatever the design (e.g. the
              beyond_base=<term>  kernel's work to wake N sleepers, measured in the same run),
                               each repeatable; a term is a floor's name, or "<name>*<counter>":
                               that floor's metric times a counter (e.g. a per-sleeper cost times
                               the sleepers woken per frame): this run's counter in a beyond=
                               term, the floor run's in a beyond_base= term. When a target on
                               a lower-is-better metric is missed, it is judged once more on the
                               cost beyond them: value - (sum of beyond - sum of beyond_base)
                               (beyond_base: the same floors at the floor run's scale). A target
                               met that way, or a cost that lies wholly inside the physics
                               (nothing left), is "MISS, explained" and not counted as a miss:
                               the rest is what the physics charges any implementation.
              bound=<name>[@<fraction>]  a floor that does only what the protocol requires
                               (the spec's loads, stores and fences on the spec's layout, no
                               implementation around them). When an absolute target
                               ("<metric><op><number>") is missed, it is judged once more: if
                               that floor misses the same target too and the benchmark reaches
                               at least <fraction> (default 0.7) of it, the verdict is "MISS,
                               explained" (the protocol as specified cannot reach the target on
                               this host, and the implementation costs little on top of it).
  Names     Without floor= in its label, "BM_<X>/<args>" pairs with "BM_Floor_<X>/<args>" when
            that exists.

  Floor of a kind: a floor= may name any benchmark of the run, not only a BM_Floor_ one (e.g. the
            1-subscriber run of a fan-out benchmark); the table calls it the floor all the same.

Skips:  a benchmark that called SkipWithError with a message starting "SKIP:" (e.g. no CUDA
        device here) is listed as skipped and is not a miss; any other error is an ERROR and,
        if it has targets, a miss.

Aggregates: if a benchmark was repeated, the median is used (else the mean, else the single run).
The table's "ratio" is floor-relative speed (1.0 = as fast as the floor, higher is better) and
"x floor" its inverse, the cost as a multiple of the floor's; a "ratios" list after each table
repeats every targeted comparison in one line.
Adding a suite to bench/ needs no change here: follow the conventions above.
"""
import json
import os
import re
import sys

RUN_OPTION = re.compile(r"/(real_time|process_time|manual_time|min_time:[^/]*|"
                        r"min_warmup_time:[^/]*|iterations:\d+|repeats:\d+)$")
TARGET = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)$")
TIME_FACTOR = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def base_name(name):
    """Strips run-option suffixes such as /real_time from a benchmark name."""
    while True:
        stripped = RUN_OPTION.sub("", name)
        if stripped == name:
            return name
        name = stripped


def load(path):
    """Returns ({base name: run dict}, context dict) for one file, preferring median, then mean,
    then plain iteration runs."""
    rank = {"median": 0, "mean": 1, None: 2}
    chosen = {}
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    for run in doc.get("benchmarks", []):
        if run.get("error_occurred"):
            run = dict(run, skipped=run.get("error_message", "error"))
        agg = run.get("aggregate_name") if run.get("run_type") == "aggregate" else None
        if agg not in rank:
            continue  # stddev, cv, ...
        name = base_name(run.get("run_name") or run["name"])
        old = chosen.get(name)
        if old is None or rank[agg] < old[0]:
            chosen[name] = (rank[agg], run)
    return {name: run for name, (_, run) in chosen.items()}, doc.get("context", {})


def parse_label(label):
    """Returns (dict of single keys, list of targets) from a label."""
    keys, targets = {}, []
    for tok in re.split(r"[;\s]+", label or ""):
        if "=" not in tok:
            continue
        k, v = tok.split("=", 1)
        if k == "target":
            targets.append(v)
        elif k in ("beyond", "beyond_base"):
            keys.setdefault(k, []).append(v)
        else:
            keys[k] = v
    return keys, targets


def lower_is_better(metric):
    return metric in ("real_time", "cpu_time") or metric.endswith(("_ns", "_us", "_ms", "_time"))


def value_of(run, metric):
    """Returns the metric's value (times normalised to ns per iteration), or None."""
    if run is None:
        return None
    if metric in ("real_time", "cpu_time"):
        v = run.get(metric)
        return None if v is None else v * TIME_FACTOR.get(run.get("time_unit", "ns"), 1.0)
    v = run.get(metric)
    return v if isinstance(v, (int, float)) else None


def default_metric(run):
    for m in ("bytes_per_second", "items_per_second"):
        if m in run:
            return m
    return "real_time"


def ratio_of(value, floor_value, metric):
    if value is None or floor_value is None or value <= 0 or floor_value <= 0:
        return None
    return floor_value / value if lower_is_better(metric) else value / floor_value


def judge(target, value, ratio, run):
    """Returns True/False for a target, or None when it cannot be evaluated."""
    m = TARGET.match(target.strip())
    if not m:
        return None
    what, op, num = m.group(1), m.group(2), float(m.group(3))
    if what == "ratio":
        actual = ratio
    elif what == "x":
        actual = None if not ratio else 1.0 / ratio
    else:
        actual = value_of(run, what)
    if actual is None:
        return None
    return {">=": actual >= num, "<=": actual <= num, ">": actual > num, "<": actual < num}[op]


def human(v, metric):
    if v is None:
        return "-"
    if metric == "bytes_per_second":
        return f"{v / 1e9:.2f} GB/s"
    if metric == "items_per_second":
        return f"{v / 1e6:.3f} M/s" if v >= 1e4 else f"{v:.1f} /s"
    if lower_is_better(metric):
        # A counter named *_us or *_ms holds that unit; times and *_ns are in ns.
        v *= 1e3 if metric.endswith("_us") else 1e6 if metric.endswith("_ms") else 1.0
        for unit, f in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
            if v >= f:
                return f"{v / f:.2f} {unit}"
        return f"{v:.1f} ns"
    return f"{v:.4g}"


# The context keys Google Benchmark writes itself; anything else was added by the benchmark
# (benchmark::AddCustomContext or --benchmark_context) and is printed above its table.
STANDARD_CONTEXT = {"date", "host_name", "executable", "num_cpus", "mhz_per_cpu",
                    "cpu_scaling_enabled", "caches", "load_avg", "library_build_type",
                    "json_schema_version"}


def shown(run, keys):
    """Returns the label's show= counters of a run as "name=value, ..." ('' when none)."""
    names = [c for c in keys.get("show", "").split(",") if c]
    return ", ".join(f"{c}={human(value_of(run, c), c)}" for c in names)


def lookup(runs, others, name):
    """Returns the usable (not skipped) run of that name from this file or the others, or None."""
    run = runs.get(base_name(name)) or others.get(base_name(name))
    return None if run is None or run.get("skipped") else run


def physics(terms, run, runs, others, metric):
    """Sums beyond= terms: "<floor>" is that floor's metric, "<floor>*<counter>" the floor's metric
    times `run`'s counter. Returns (sum, None) or (None, the first term that is missing)."""
    total = 0.0
    for term in terms:
        name, _, scale = term.partition("*")
        v = value_of(lookup(runs, others, name), metric)
        k = value_of(run, scale) if scale else 1.0
        if v is None or k is None:
            return None, term
        total += v * k
    return total, None


def explain(target, value, floor, metric, keys, run, runs, others):
    """For a missed target with beyond= floors: returns (verdict, note), verdict "explained" when
    the cost beyond those floors meets the target, else "MISS"; (None, "") when not applicable.
    The beyond_base= terms are what the floor run (`floor`) paid of the same physics, so their
    counters are the floor run's: a lone subscriber that sleeps is woken by its publisher too."""
    floor_value = value_of(floor, metric)
    if "beyond" not in keys or not lower_is_better(metric) or value is None:
        return None, ""
    top, missing = physics(keys["beyond"], run, runs, others, metric)
    if floor is None:
        return "MISS", "no floor run to take the beyond_base counters from"
    base, missing_base = physics(keys.get("beyond_base", []), floor, runs, others, metric)
    if top is None or base is None:
        return "MISS", f"physics floor {missing or missing_base} missing"
    rest = value - (top - base)
    ratio = ratio_of(rest, floor_value, metric)
    ok = judge(target, rest, ratio, {metric: rest}) if rest > 0 else True
    cost = "-" if not ratio else f"{1.0 / ratio:.2f}x"
    note = (f"beyond the physics floors ({human(top, metric)} - {human(base, metric)}): "
            f"{human(rest, metric)} = {cost}")
    return ("explained" if ok else "MISS"), note


def bounded(target, value, metric, keys, runs, others):
    """For a missed absolute target with a bound= floor: returns (verdict, note), "explained" when
    the bound misses the same target and the benchmark reaches the bound's fraction of it, else
    "MISS"; (None, "") when not applicable (no bound=, or a ratio/x target)."""
    m = TARGET.match(target.strip())
    if "bound" not in keys or not m or m.group(1) in ("ratio", "x"):
        return None, ""
    name, _, frac = keys["bound"].partition("@")
    need = float(frac) if frac else 0.7
    bound = lookup(runs, others, name)
    if bound is None:
        return "MISS", f"protocol floor {name} missing"
    bound_value = value_of(bound, m.group(1))
    bound_ok = judge(target, bound_value, None, bound)
    ratio = ratio_of(value, value_of(bound, metric), metric)
    if bound_ok is None or ratio is None:
        return "MISS", f"protocol floor {name} has no {m.group(1)}"
    note = (f"protocol floor {name}: {human(bound_value, m.group(1))}, this run {ratio:.2f} of "
            f"it (explained when that floor misses the target too and the run reaches {need:g})")
    return ("explained" if not bound_ok and ratio >= need else "MISS"), note


def skip_reason(run):
    """Returns (kind, message) for a run that reported an error, kind "skipped" or "ERROR"."""
    msg = str(run.get("skipped") or "")
    if msg.startswith("SKIP:"):
        return "skipped", msg[len("SKIP:"):].strip()
    return "ERROR", msg or "error"


def report(runs, others, context, title):
    """Prints one table (and its ratios list); returns the number of missed targets."""
    rows, ratios, misses = [], [], 0
    for name, run in runs.items():
        keys, targets = parse_label(run.get("label", ""))
        metric = keys.get("metric") or default_metric(run)
        if run.get("skipped"):
            kind, msg = skip_reason(run)
            rows.append([name, metric, "-", keys.get("floor", ""), "", "", "",
                         ", ".join(targets), f"{kind}: {msg}", ""])
            misses += kind == "ERROR" and bool(targets)
            continue
        extra = shown(run, keys)
        if name.startswith("BM_Floor_"):
            rows.append([name, metric, human(value_of(run, metric), metric), "(floor)", "", "",
                         "", "", "", extra])
            continue
        floor_name = keys.get("floor")
        if floor_name is None and name.startswith("BM_"):
            guess = "BM_Floor_" + name[3:]
            floor_name = guess if guess in runs or guess in others else None
        floor = lookup(runs, others, floor_name) if floor_name else None
        value = value_of(run, metric)
        floor_value = value_of(floor, metric)
        ratio = ratio_of(value, floor_value, metric)
        verdicts, notes = [], []
        for t in targets:
            ok = judge(t, value, ratio, run)
            verdict = "?" if ok is None else ("pass" if ok else "MISS")
            if ok is False:
                again, note = explain(t, value, floor, metric, keys, run, runs, others)
                if again is None:
                    again, note = bounded(t, value, metric, keys, runs, others)
                if again:
                    verdict = "MISS, explained" if again == "explained" else "MISS"
                    notes.append(note)
            verdicts.append(verdict)
            misses += verdict == "MISS"
        if notes:
            extra = "; ".join(([extra] if extra else []) + notes)
        rows.append([name, metric, human(value, metric),
                     floor_name or "-",
                     human(floor_value, metric) if floor else ("missing" if floor_name else ""),
                     "-" if ratio is None else f"{ratio:.2f}",
                     "-" if not ratio else f"{1.0 / ratio:.2f}x",
                     ", ".join(targets), ", ".join(verdicts), extra])
        if targets and floor_name:
            cost = "?" if not ratio else f"{1.0 / ratio:.2f}x"
            ratios.append(f"  {name} = {cost} {floor_name} ({metric}: {human(value, metric)} vs "
                          f"{human(floor_value, metric)}{'; ' + extra if extra else ''}); "
                          f"target {', '.join(targets)}: {', '.join(verdicts)}")
        elif extra:
            ratios.append(f"  {name}: {extra} (reported, no target)")
    if title:
        print(f"== {title}")
    extra = {k: v for k, v in context.items() if k not in STANDARD_CONTEXT}
    if extra:
        print("   " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items())))
    header = ["benchmark", "metric", "value", "floor", "floor value", "ratio", "x floor",
              "target", "result", "also"]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    if ratios:
        print("ratios (cost as a multiple of the floor; medians when repeated) and reported "
              "figures:")
        print("\n".join(ratios))
    return misses


def main(argv):
    strict = "--strict" in argv
    paths = [a for a in argv if a != "--strict"]
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    loaded = [(path,) + load(path) for path in paths]
    misses = 0
    for i, (path, runs, context) in enumerate(loaded):
        others = {}
        for j, (_, other_runs, _) in enumerate(loaded):
            if j != i:
                others.update(other_runs)
        if i:
            print()
        misses += report(runs, others, context,
                         os.path.basename(path) if len(loaded) > 1 else "")
    if misses:
        print(f"\n{misses} target(s) missed")
    return 1 if strict and misses else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

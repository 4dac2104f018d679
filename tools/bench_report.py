#!/usr/bin/env python3
"""Turns criterion's results into the tables and charts of docs/benchmarks.md.

Reads every `<criterion dir>/**/new/{benchmark,estimates}.json` written by
`cargo bench -p arraypool-benches` (and `burst/retention.json`, written by
benches/retention.rs), then:

- writes the SVG charts (ns per rent+return against buffer size, log axes) into docs/benchmarks/;
- replaces the text between `<!-- generated:begin -->` and `<!-- generated:end -->` in
  docs/benchmarks.md with the target table and one table per benchmark (medians, ratios).

Standard library only, so that it runs anywhere python3 does:

    python3 tools/bench_report.py [--criterion DIR] [--doc docs/benchmarks.md]

from the repository root. The criterion directory defaults to $CRITERION_HOME, else
$CARGO_TARGET_DIR/criterion, else target/criterion (criterion's own rule; the workspace's one
target/ is at the root).
"""

import argparse
import glob
import json
import math
import os
import sys

BEGIN = "<!-- generated:begin -->"
END = "<!-- generated:end -->"

# Contenders in table and legend order, with their labels and chart colors.
CONTENDERS = [
    ("arraypool", "arraypool `rent`", "#d62728"),
    ("arraypool_rent_zeroed", "arraypool `rent_zeroed`", "#ff9896"),
    ("arraypool_create", "arraypool `create()`, no thread cache", "#ff7f0e"),
    ("arraypool_shared", "arraypool shared pool", "#d62728"),
    ("arraypool_create_no_thread_cache", "arraypool `create()`, no thread cache", "#ff7f0e"),
    ("arraypool_builder_thread_cache", "arraypool builder pool, thread cache", "#e6550d"),
    ("tls_stack_floor", "thread-local stack (floor)", "#7f7f7f"),
    ("mutex_stack_floor", "`Mutex<Vec<Vec<u8>>>` stack (floor)", "#525252"),
    ("vec_with_capacity", "`Vec::with_capacity`", "#1f77b4"),
    ("vec_zeroed", "`vec![0; n]`", "#17becf"),
    ("vec", "plain `Vec`", "#1f77b4"),
    ("u64_floor", "the queue carrying a `u64` (floor)", "#7f7f7f"),
    ("item24_floor", "the queue carrying a `[u64; 3]` (floor)", "#525252"),
    ("ring_floor", "a perfect recycler, a second queue back (floor)", "#bdbdbd"),
    ("zeropool_alloc_uninit", "zeropool `alloc_uninit`", "#2ca02c"),
    ("zeropool_alloc", "zeropool `alloc`", "#98df8a"),
    ("object_pool", "object-pool", "#9467bd"),
    ("opool", "opool", "#8c564b"),
    ("bufpool", "bufpool", "#e377c2"),
    ("byte_pool", "byte-pool", "#bcbd22"),
]
LABEL = {key: label for key, label, _ in CONTENDERS}
COLOR = {key: color for key, _, color in CONTENDERS}
ORDER = {key: i for i, (key, _, _) in enumerate(CONTENDERS)}


def criterion_dir(explicit):
    if explicit:
        return explicit
    if os.environ.get("CRITERION_HOME"):
        return os.environ["CRITERION_HOME"]
    if os.environ.get("CARGO_TARGET_DIR"):
        return os.path.join(os.environ["CARGO_TARGET_DIR"], "criterion")
    return os.path.join("target", "criterion")


def load(root):
    """{group: {function: {value_str: median_ns}}} from criterion's `new` estimates."""
    results = {}
    pattern = os.path.join(root, "**", "new", "benchmark.json")
    for path in glob.glob(pattern, recursive=True):
        folder = os.path.dirname(path)
        with open(path) as f:
            bench = json.load(f)
        with open(os.path.join(folder, "estimates.json")) as f:
            estimates = json.load(f)
        group = bench["group_id"]
        function = bench.get("function_id") or ""
        value = bench.get("value_str") or ""
        median = estimates["median"]["point_estimate"]
        results.setdefault(group, {}).setdefault(function, {})[value] = median
    return results


def load_json(path):
    """A figures file a bench writes itself, or None if that bench has not run."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def fmt_ns(ns):
    if ns is None:
        return "–"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    if ns >= 100:
        return f"{ns:.0f} ns"
    return f"{ns:.1f} ns"


def fmt_size(n):
    n = int(n)
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    if n >= 10_000 and n % 1000 == 0:
        if n % 1_000_000 == 0:
            return f"{n // 1_000_000} MB"
        return f"{n // 1000} KB"
    return f"{n} B"


def fmt_bytes(n):
    if n is None:
        return "n/a"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n} B"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}"


def sizes_of(group):
    values = set()
    for series in group.values():
        values.update(series)
    return sorted(values, key=lambda v: int(v))


def size_table(group, ratio_to):
    """Medians per size and contender, then arraypool's ratio to each of `ratio_to`."""
    functions = sorted(group, key=lambda f: ORDER.get(f, 99))
    head = ["size"] + [LABEL.get(f, f) for f in functions]
    head += [f"arraypool ÷ {LABEL[r]}" for r in ratio_to if r in group]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for size in sizes_of(group):
        row = [fmt_size(size)]
        row += [fmt_ns(group[f].get(size)) for f in functions]
        mine = group.get("arraypool", {}).get(size)
        row += [fmt_ratio(ratio(mine, group[r].get(size))) for r in ratio_to if r in group]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def simple_table(group, parameter_name):
    """Rows = parameter values, columns = functions, medians; ratio to arraypool last."""
    functions = sorted(group, key=lambda f: (ORDER.get(f, 50), f))
    head = [parameter_name] + [LABEL.get(f, f) for f in functions]
    others = [f for f in functions if f != "arraypool" and not f.startswith("arraypool")]
    head += [f"arraypool ÷ {LABEL.get(f, f)}" for f in others]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for value in sizes_of(group):
        row = [fmt_size(value) if parameter_name == "size" else value]
        row += [fmt_ns(group[f].get(value)) for f in functions]
        mine = group.get("arraypool", {}).get(value)
        row += [fmt_ratio(ratio(mine, group[f].get(value))) for f in others]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def contention_table(group):
    head = ["contender", "1 thread (ns/op)", "2 threads (ns/op per thread)", "2 ÷ 1"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for function in sorted(group, key=lambda f: (ORDER.get(f, 50), f)):
        one, two = group[function].get("1"), group[function].get("2")
        lines.append(
            f"| {LABEL.get(function, function)} | {fmt_ns(one)} | {fmt_ns(two)} | "
            f"{fmt_ratio(ratio(two, one))} |"
        )
    return "\n".join(lines)


def hot_pair_table(group):
    """One row per contender and size: median, then its ratio to each floor."""
    floors = [f for f in ("tls_stack_floor", "mutex_stack_floor") if f in group]
    head = ["contender", "size", "median per rent + return"]
    head += [f"÷ {LABEL[f]}" for f in floors]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    # The shared pool first: the other pools and the floors are read against it.
    first = ["arraypool_shared", "arraypool_builder_thread_cache", "arraypool_create"]
    for function in sorted(group, key=lambda f: (f not in first, first.index(f) if f in first
                                                 else ORDER.get(f, 50), f)):
        for value in sorted(group[function], key=int):
            ns = group[function][value]
            row = [LABEL.get(function, function), fmt_size(value), fmt_ns(ns)]
            row += [fmt_ratio(ratio(ns, group[f].get(value))) for f in floors]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def flat_table(group, per, baselines):
    """A group whose benchmarks have no parameter: one row per contender, its median, then its
    ratio to each of `baselines` (contenders of the same group)."""
    baselines = [b for b in baselines if b in group]
    head = ["contender", f"median per {per}"] + [f"÷ {LABEL.get(b, b)}" for b in baselines]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for function in sorted(group, key=lambda f: (ORDER.get(f, 50), f)):
        ns = group[function].get("")
        row = [LABEL.get(function, function), fmt_ns(ns)]
        row += [fmt_ratio(ratio(ns, group[b].get(""))) for b in baselines]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def parked_table(parked):
    """benches/parked_threads.rs's memory.json: one row per pool."""
    head = ["pool", "threads × buffers per size × sizes (up to)", "`thread_cache_bytes`",
            "held while parked", "held, partitions topped up", "held after join",
            "thread tiers (topped up − after join)", "RSS before", "RSS parked",
            "RSS after join"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in parked:
        p, j, b = row["parked"], row["joined"], row["before"]
        t = row.get("topped_up")
        topped, tiers = "–", "–"
        if t and "thread_cache_bytes" in row:
            topped = f"{t['held_buffers']:,} buffers, {fmt_bytes(t['held_bytes'])}"
            value, _, exact = thread_tier_bytes(row)
            tiers = f"{value:,} B" if exact else "not derivable: partitions not full after join"
        budget = row.get("thread_cache_bytes")
        lines.append(
            f"| {LABEL.get(row['pool'], row['pool'])} | {row['threads']} × {row['depth']} × "
            f"{row['sizes']} ({fmt_size(row['max_len'])}) | "
            f"{'–' if budget is None else fmt_bytes(budget)} | "
            f"{p['held_buffers']:,} buffers, {fmt_bytes(p['held_bytes'])} | {topped} | "
            f"{j['held_buffers']:,} buffers, {fmt_bytes(j['held_bytes'])} | {tiers} | "
            f"{fmt_bytes(b['rss_bytes'])} | {fmt_bytes(p['rss_bytes'])} | "
            f"{fmt_bytes(j['rss_bytes'])} |"
        )
    return "\n".join(lines)


def burst_table(group, retention):
    lines = []
    head = ["contender", "median per burst (10,000 rents + returns)"]
    lines += ["| " + " | ".join(head) + " |", "|---|---|"]
    for function in sorted(group, key=lambda f: (ORDER.get(f, 50), f)):
        lines.append(f"| {LABEL.get(function, function)} | {fmt_ns(group[function].get(''))} |")
    if retention:
        lines.append("")
        head = ["pool", "held buffers", "held bytes", "documented bound", "held ÷ bound",
                "allocated", "dropped (full)"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in retention:
            lines.append(
                f"| {row['pool']} | {row['held_buffers']} | {row['held_bytes']:,} | "
                f"{row['bound_bytes']:,} | {row['held_bytes'] / row['bound_bytes']:.2f} | "
                f"{row['allocated']:,} | {row['dropped_full']:,} |"
            )
    return "\n".join(lines)


def target_rows(results, parked=None):
    """(case, figure, floor's figure, note, target, met) for each target.

    A row with no target has `target` None (a figure shown for what it explains). A figure
    that is text (the parked threads' bytes) comes with its own `met`, None when it cannot be
    derived.

    The floor's figure is the same ratio for the thread-local stack floor (or its 2 ÷ 1 thread
    ratio): what the least possible pool would score in the same run.
    """
    rows = []

    def get(group, function, value):
        return results.get(group, {}).get(function, {}).get(value)

    def pair(case, group, mine, other, value, limit):
        """`mine` ÷ `other` in one group, with no floor figure: for rows whose other side is
        itself a floor or another arraypool pool."""
        rows.append((case, ratio(get(group, mine, value), get(group, other, value)), None, limit))

    def single(case, group, other, size, limit):
        r = ratio(get(group, "arraypool", size), get(group, other, size))
        floor = None
        if other != "tls_stack_floor":
            floor = ratio(get(group, "tls_stack_floor", size), get(group, other, size))
        rows.append((case, r, floor, limit))

    single("hot 4 KiB rent+return ÷ thread-local stack floor", "overhead", "tls_stack_floor",
           "4096", 2.0)
    single("hot 4 KiB rent+return ÷ zeropool `alloc_uninit`", "overhead",
           "zeropool_alloc_uninit", "4096", 0.5)
    single("hot 4 KiB rent+return ÷ `Vec::with_capacity` + drop", "overhead",
           "vec_with_capacity", "4096", 0.3)
    single("real cycle 100 B ÷ `vec![0; n]`", "real_cycle", "vec_zeroed", "100", 1.0)
    single("nested 4 × 4 KiB ÷ thread-local stack floor doing the same", "nested_4",
           "tls_stack_floor", "4096", 2.0)
    single("nested 4 × 4 KiB ÷ 4 × `Vec::with_capacity` + drop", "nested_4",
           "vec_with_capacity", "4096", 0.3)

    def worst(group, who, other, predicate):
        mine = results.get(group, {}).get(who, {})
        theirs = results.get(group, {}).get(other, {})
        ratios = [(ratio(mine.get(s), theirs.get(s)), s) for s in mine if predicate(int(s))]
        ratios = [(r, s) for r, s in ratios if r is not None]
        return max(ratios) if ratios else (None, None)

    def worst_row(case, group, predicate, limit):
        r, s = worst(group, "arraypool", "vec_zeroed", predicate)
        floor, fs = worst(group, "tls_stack_floor", "vec_zeroed", predicate)
        where = fmt_size(s) if s else "–"
        floor_where = f" ({fmt_size(fs)})" if fs else ""
        rows.append((f"{case} (worst: {where})", r, floor, limit, floor_where))

    pair("shared hot pair 4 KiB ÷ thread-local stack floor (aim 1.3)", "custom_pool_hot_pair",
         "arraypool_shared", "tls_stack_floor", "4096", 1.6)
    pair("custom pool with thread cache, hot pair 4 KiB ÷ shared hot pair",
         "custom_pool_hot_pair", "arraypool_builder_thread_cache", "arraypool_shared", "4096",
         1.3)
    pair("`create()` hot pair 4 KiB ÷ `Mutex<Vec<Vec<u8>>>` pop + push", "custom_pool_hot_pair",
         "arraypool_create", "mutex_stack_floor", "4096", 1.5)

    worst_row("real cycle ≥ 1000 B ÷ `vec![0; n]`", "real_cycle", lambda n: n >= 1000, 0.5)
    for group, allocator in (("real_cycle", "glibc"), ("mimalloc_real_cycle", "mimalloc")):
        worst_row(f"real cycle ≥ 100 KB ÷ `vec![0; n]`, {allocator}", group,
                  lambda n: n >= 100_000, 0.1)
    for group, name in (("cross_thread_handoff", "hand-off"),
                        ("cross_thread_pipeline", "pipeline")):
        for size in sorted(results.get(group, {}).get("arraypool", {}), key=int):
            r = ratio(get(group, "arraypool", size), get(group, "vec", size))
            rows.append((f"cross-thread {name} {fmt_size(size)} ÷ plain `Vec`", r, None, 0.7))
    pair("spin hand-off, 200–3200 B, per buffer ÷ the same queue carrying a `u64`",
         "spin_handoff", "arraypool", "u64_floor", "", 5.0)
    # No targets: these two rows split the gap of the row above into what moving a buffer's
    # handle costs by itself (a 24-byte item, a `Vec`'s size, costs the queue several times a
    # `u64`: 32-byte slots, more cache-line traffic between the cores) and what the pool adds
    # to a perfect recycler. The issue set no target for either, and one idle-machine run (the
    # pool about level with the recycler) is too little to set one on.
    pair("spin hand-off, 200–3200 B, per buffer ÷ the same queue carrying a 24-byte "
         "`[u64; 3]` (a handle's move alone)", "spin_handoff", "arraypool", "item24_floor", "",
         None)
    pair("spin hand-off, 200–3200 B, per buffer ÷ a perfect recycler (a second queue back)",
         "spin_handoff", "arraypool", "ring_floor", "", None)
    r = ratio(get("contention", "arraypool_shared", "2"), get("contention", "arraypool_shared", "1"))
    floor = ratio(get("contention", "tls_stack_floor", "2"), get("contention", "tls_stack_floor", "1"))
    rows.append(("2 threads ÷ 1 thread, per-op cost (shared pool)", r, floor, 1.25))
    out = []
    for row in rows:
        case, value, floor, limit = row[:4]
        note = row[4] if len(row) > 4 else ""
        met = None if limit is None or value is None else value <= limit
        out.append((case, value, floor, note, limit, met))

    # The thread tiers' bytes while parked, against the budget: `threads × thread_cache_bytes`
    # bounds what live threads cache (benches/parked_threads.rs has why `topped_up − joined` is
    # exactly that figure, and prints it).
    for pool, who in (("arraypool_shared", "shared pool"),
                      ("arraypool_builder_thread_cache", "builder pool with thread cache")):
        row = next((r for r in parked or [] if r["pool"] == pool), None)
        threads = row["threads"] if row else 64
        up_to = fmt_size(row["max_len"]) if row else "1 MiB"
        case = (f"bytes in thread tiers after {threads} threads used every size up to {up_to} "
                f"and parked ({who})")
        figure, bound, met = None, f"{threads} × `thread_cache_bytes`", None
        if row and "topped_up" in row:  # a memory.json from before the top-up has no figure
            tiers, bound_bytes, exact = thread_tier_bytes(row)
            bound += f" = {bound_bytes:,} B"
            if exact:
                figure, met = f"{tiers:,} B", tiers <= bound_bytes
            else:
                figure = "not derivable: partitions not full after join"
        out.append((case, figure, None, "", bound, met))
    return out


def thread_tier_bytes(row):
    """(bytes in the thread tiers while parked, the bound, whether the derivation holds) for a
    row of memory.json: `topped_up − joined`, exact when the partitions were full after join
    (`joined` holds `per_bucket` buffers of every size and nothing else)."""
    tiers = row["topped_up"]["held_bytes"] - row["joined"]["held_bytes"]
    bound = row["threads"] * row["thread_cache_bytes"]
    exact = row["joined"]["held_buffers"] == row["per_bucket"] * row["sizes"]
    return tiers, bound, exact


def verdict_of(value, limit, met):
    if value is None:
        return "not run"
    if limit is None:
        return "no target"
    if met is None:
        return "unknown"
    return "met" if met else "**missed**"


def fmt_limit(limit):
    return "–" if limit is None else f"≤ {limit}"


def fmt_figure(value):
    return value if isinstance(value, str) else fmt_ratio(value)


def targets_table(results, parked=None):
    lines = ["| case | arraypool ÷ other | target | | the floor's figure |",
             "|---|---|---|---|---|"]
    for case, value, floor, note, limit, met in target_rows(results, parked):
        floor_text = "" if floor is None else fmt_ratio(floor) + note
        lines.append(f"| {case} | {fmt_figure(value)} | {fmt_limit(limit)} | "
                     f"{verdict_of(value, limit, met)} | {floor_text} |")
    return "\n".join(lines)


# ----- SVG ------------------------------------------------------------------------------------

def svg_chart(path, title, series, subtitle=""):
    """A log-log line chart: `series` is [(key, {size: ns}, dashed)]."""
    width, height = 1040, 600
    left, right, top, bottom = 95, 325, 60, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [(int(s), v) for _, data, _ in series for s, v in data.items() if v > 0]
    if not points:
        return
    xmin, xmax = min(p[0] for p in points), max(p[0] for p in points)
    ymin = 10 ** math.floor(math.log10(min(p[1] for p in points)))
    ymax = 10 ** math.ceil(math.log10(max(p[1] for p in points)))
    lx0, lx1, ly0, ly1 = math.log2(xmin), math.log2(xmax), math.log10(ymin), math.log10(ymax)

    def x(size):
        return left + (math.log2(size) - lx0) / (lx1 - lx0) * plot_w

    def y(ns):
        return top + plot_h - (math.log10(ns) - ly0) / (ly1 - ly0) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="28" font-size="17" font-weight="bold">{escape(title)}</text>',
        f'<text x="{left}" y="47" fill="#555">{escape(subtitle)}</text>',
    ]
    # Grid and axes.
    decade = ly0
    while decade <= ly1 + 1e-9:
        value = 10 ** decade
        yy = y(value)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{left - 8}" y="{yy + 4:.1f}" text-anchor="end">'
                   f'{escape(fmt_decade(value))}</text>')
        decade += 1
    exponent = math.ceil(lx0)
    while exponent <= lx1 + 1e-9:
        size = 2 ** exponent
        xx = x(size)
        major = exponent % 4 == 0
        out.append(f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{top + plot_h}" '
                   f'stroke="{"#ddd" if major else "#f0f0f0"}"/>')
        if major:
            out.append(f'<text x="{xx:.1f}" y="{top + plot_h + 20}" text-anchor="middle">'
                       f'{escape(fmt_size(size))}</text>')
        exponent += 1
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
               f'stroke="#333"/>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 15}" text-anchor="middle">'
               f'buffer size (log scale)</text>')
    out.append(f'<text transform="translate(18,{top + plot_h / 2}) rotate(-90)" '
               f'text-anchor="middle">median time per rent + return (log scale)</text>')
    # Series, arraypool drawn last so it sits on top.
    ordered = sorted(series, key=lambda s: (s[0] == "arraypool", ORDER.get(s[0], 99)))
    for key, data, dashed in ordered:
        pts = sorted((int(s), v) for s, v in data.items() if v > 0)
        if not pts:
            continue
        color = COLOR.get(key, "#000")
        width_px = 3 if key == "arraypool" else 1.6
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        coords = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in pts)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" '
                   f'stroke-width="{width_px}"{dash}/>')
        for s, v in pts:
            out.append(f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="2.5" fill="{color}"/>')
    # Legend.
    legend_y = top + 10
    for key, _, dashed in sorted(series, key=lambda s: ORDER.get(s[0], 99)):
        color = COLOR.get(key, "#000")
        lx = left + plot_w + 20
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        out.append(f'<line x1="{lx}" y1="{legend_y}" x2="{lx + 28}" y2="{legend_y}" '
                   f'stroke="{color}" stroke-width="{3 if key == "arraypool" else 2}"{dash}/>')
        label = LABEL.get(key, key).replace("`", "") + (" (overhead)" if dashed else "")
        out.append(f'<text x="{lx + 36}" y="{legend_y + 4}">{escape(label)}</text>')
        legend_y += 22
    out.append("</svg>")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def fmt_decade(ns):
    """An axis label for a power of ten nanoseconds: 1 ns, 10 ns, … 1 µs, … 1 ms, 1 s."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:g} {unit}"
    return f"{ns:g} ns"


def escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--criterion", help="criterion output directory")
    parser.add_argument("--doc", default="docs/benchmarks.md")
    parser.add_argument("--charts", default="docs/benchmarks")
    args = parser.parse_args()

    root = criterion_dir(args.criterion)
    results = load(root)
    if not results:
        sys.exit(f"no criterion results under {root}: run `cargo bench -p arraypool-benches` first")
    retention = load_json(os.path.join(root, "burst", "retention.json"))
    parked = load_json(os.path.join(root, "parked_threads", "memory.json"))

    charts = [
        ("overhead", "rent_return_overhead.svg",
         "Rent + return, overhead only (glibc)", "no bytes touched; single thread"),
        ("real_cycle", "rent_return_real_cycle.svg",
         "Rent + return, real cycle (glibc)",
         "one byte written per 4 KiB page and the last byte; single thread"),
    ]
    for group, file, title, subtitle in charts:
        if group in results:
            series = [(f, data, False) for f, data in results[group].items()]
            svg_chart(os.path.join(args.charts, file), title, series, subtitle)
    if "mimalloc_real_cycle" in results:
        series = [(f, d, False) for f, d in results["mimalloc_real_cycle"].items()]
        series += [(f, d, True) for f, d in results.get("mimalloc_overhead", {}).items()
                   if f in ("arraypool", "vec_with_capacity")]
        svg_chart(os.path.join(args.charts, "rent_return_mimalloc.svg"),
                  "Rent + return under mimalloc", series,
                  "solid: real cycle; dashed: overhead only; single thread")

    sections = ["### Targets\n", targets_table(results, parked)]
    single = [
        ("overhead", "Single thread, overhead only (glibc)",
         ["tls_stack_floor", "vec_with_capacity", "vec_zeroed", "zeropool_alloc_uninit"]),
        ("real_cycle", "Single thread, real cycle (glibc)",
         ["tls_stack_floor", "vec_with_capacity", "vec_zeroed", "zeropool_alloc_uninit"]),
        ("mimalloc_overhead", "Single thread, overhead only (mimalloc)",
         ["tls_stack_floor", "vec_with_capacity", "vec_zeroed"]),
        ("mimalloc_real_cycle", "Single thread, real cycle (mimalloc)",
         ["tls_stack_floor", "vec_with_capacity", "vec_zeroed"]),
    ]
    for group, title, ratio_to in single:
        if group in results:
            sections += [f"\n### {title}\n", f"Group `{group}`.\n",
                         size_table(results[group], ratio_to)]
    if "overhead" in results:
        zeroed = results["overhead"]
        pairs = ["| size | arraypool `rent_zeroed` | zeropool `alloc` | ratio |", "|---|---|---|---|"]
        for size in sizes_of(zeroed):
            a = zeroed.get("arraypool_rent_zeroed", {}).get(size)
            b = zeroed.get("zeropool_alloc", {}).get(size)
            pairs.append(f"| {fmt_size(size)} | {fmt_ns(a)} | {fmt_ns(b)} | "
                         f"{fmt_ratio(ratio(a, b))} |")
        sections += ["\n### Zeroed rents: `rent_zeroed` ÷ zeropool `alloc` (overhead group)\n",
                     "\n".join(pairs)]
    for depth, words in ((2, "two"), (4, "four")):
        group = f"nested_{depth}"
        if group in results:
            sections += [f"\n### Nested rents ({words} of one size held, then all returned)\n",
                         f"Group `{group}`; time per iteration ({depth} rents and {depth} "
                         f"returns).\n",
                         simple_table(results[group], "size")]
    for group, title in (("cross_thread_handoff", "Cross-thread hand-off"),
                         ("cross_thread_pipeline", "Two-stage pipeline")):
        if group in results:
            sections += [f"\n### {title}\n", f"Group `{group}`; time per buffer.\n",
                         simple_table(results[group], "size")]
    if "custom_pool_hot_pair" in results:
        sections += ["\n### Hot pair by kind of pool (4 KiB, rent then return, one thread)\n",
                     "Group `custom_pool_hot_pair`.\n",
                     hot_pair_table(results["custom_pool_hot_pair"])]
    if "spin_handoff" in results:
        sections += ["\n### Spin hand-off (200–3200 B through a bounded `ArrayQueue`)\n",
                     "Group `spin_handoff`; time per buffer or message, end to end.\n",
                     flat_table(results["spin_handoff"], "message",
                                ["u64_floor", "item24_floor", "ring_floor", "vec"])]
    if "contention" in results:
        sections += ["\n### Contention (4 KiB, each thread in a tight loop)\n",
                     contention_table(results["contention"])]
    if "short_lived_thread" in results:
        sections += ["\n### A short-lived thread using every size once\n",
                     "Group `short_lived_thread`: a fresh thread rents and returns one buffer of "
                     "every size from 16 B to 1 MiB, then exits (spawn, join and the exit flush "
                     "included).\n",
                     flat_table(results["short_lived_thread"], "thread",
                                ["vec_with_capacity"])]
    if parked:
        sections += ["\n### Parked threads: bytes in thread tiers after 64 threads used every "
                     "size and parked\n",
                     "`held_bytes` counts thread tiers and partitions together. While the "
                     "threads are parked, a fresh thread rents `per_bucket` buffers of every "
                     "size and returns them all, which leaves every bucket's partitions full "
                     "(topped up); at join the threads' magazines then find no room and are "
                     "freed, so after join the pool holds the full partitions alone, and "
                     "topped up − after join is what the thread tiers held. (Parked − after "
                     "join would not be: a thread keeps its own returns, so the partitions of "
                     "the sizes it caches are nearly empty while it is parked and take a share "
                     "of its magazines at exit.) RSS is the whole process's "
                     "(`/proc/self/statm`): after join it includes the top-up's buffers, and "
                     "the builder pool's row what the shared pool still holds.\n",
                     parked_table(parked)]
    if "burst" in results:
        sections += ["\n### Burst and retention (10,000 mixed-size rents, then all returned)\n",
                     burst_table(results["burst"], retention)]
    generated = "\n".join(sections) + "\n"

    with open(args.doc) as f:
        doc = f.read()
    if BEGIN not in doc or END not in doc:
        sys.exit(f"{args.doc} lacks the {BEGIN} / {END} markers")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(args.doc, "w") as f:
        f.write(head + BEGIN + "\n" + generated + END + tail)
    for case, value, floor, note, limit, met in target_rows(results, parked):
        floor_text = "" if floor is None else f"  [floor {fmt_ratio(floor)}{note}]"
        verdict = verdict_of(value, limit, met).replace("**missed**", "MISSED")
        print(f"{verdict:<9} {fmt_figure(value):>6} ({fmt_limit(limit)})  {case}{floor_text}")


if __name__ == "__main__":
    main()

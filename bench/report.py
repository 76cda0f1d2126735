"""Aggregate the runs (median over rounds), compute Tandem ÷ peer ratios, check the targets,
and render the Markdown table for the README."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .servers import ALL, BASELINE, LABELS, PYCRDT, RELAY, TANDEM, YWS

Runs = list[dict[str, Any]]
Summary = dict[str, dict[str, dict[str, Any]]]  # workload -> server -> figure -> value


@dataclass(frozen=True)
class Row:
    workload: str
    metric: str
    label: str
    better: str  # "higher" or "lower"
    scale: float = 1.0
    digits: int = 0


def summarise(runs: Runs) -> Summary:
    """Median of every numeric figure over the rounds; booleans must hold in every round."""
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        grouped[run["workload"]][run["server"]].append(run["figures"])
    out: Summary = {}
    for workload, servers in grouped.items():
        out[workload] = {}
        for server, figures in servers.items():
            merged: dict[str, Any] = {}
            for key in figures[0]:
                values = [f.get(key) for f in figures]
                if all(isinstance(v, bool) for v in values):
                    merged[key] = all(values)
                elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                    merged[key] = round(statistics.median(values), 3)
                elif any(v is None for v in values) and key.endswith(("_per_s", "_ms")):
                    merged[key] = None  # a round that did not finish spoils the figure
                else:
                    merged[key] = values[0] if len(values) == 1 else values
            merged["rounds"] = len(figures)
            out[workload][server] = merged
    return out


def ratios(summary: Summary, rows: list[Row]) -> dict[str, dict[str, dict[str, float | None]]]:
    out: dict[str, dict[str, dict[str, float | None]]] = defaultdict(dict)
    for row in rows:
        servers = summary.get(row.workload, {})
        mine = servers.get(TANDEM, {}).get(row.metric)
        per_peer: dict[str, float | None] = {}
        for peer in (PYCRDT, YWS, RELAY, BASELINE):
            theirs = servers.get(peer, {}).get(row.metric)
            ok = isinstance(mine, int | float) and isinstance(theirs, int | float) and theirs
            per_peer[peer] = round(mine / theirs, 3) if ok else None  # type: ignore[operator]
        out[row.workload][row.metric] = per_peer
    return dict(out)


def _fmt(value: Any, row: Row) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        scaled = value * row.scale
        return f"{scaled:,.{row.digits}f}"
    return str(value)


def _fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def markdown_table(summary: Summary, rows: list[Row]) -> str:
    rs = ratios(summary, rows)
    present = {server for servers in summary.values() for server in servers}
    shown = [s for s in ALL if s != BASELINE or BASELINE in present]
    compared = [p for p in (PYCRDT, YWS, RELAY, BASELINE) if p in shown]
    names = {PYCRDT: "pycrdt-ws", YWS: "y-ws", RELAY: "relay", BASELINE: "baseline"}
    head = (
        "| workload | figure | better | "
        + " | ".join(LABELS[s] for s in shown)
        + " | "
        + " | ".join(f"Tandem ÷ {names[p]}" for p in compared)
        + " |"
    )
    lines = [head, "|" + " --- |" * (3 + len(shown) + len(compared))]
    if not any(summary.get(row.workload) for row in rows):
        return ""
    for row in rows:
        servers = summary.get(row.workload)
        if not servers:
            continue
        cells = [_fmt(servers.get(s, {}).get(row.metric), row) for s in shown]
        ratio = rs[row.workload][row.metric]
        lines.append(
            f"| {row.workload} | {row.label} | {row.better} | "
            + " | ".join(cells)
            + " | "
            + " | ".join(_fmt_ratio(ratio[p]) for p in compared)
            + " |"
        )
    return "\n".join(lines)


def storage_table(storage: dict[str, Any]) -> str:
    if not storage:
        return ""
    raw = storage["uncompacted"]
    default = storage["default"]
    state = storage["merged_state_bytes"]

    def kib(n: int | None) -> str:
        return "—" if n is None else f"{n / 1024:,.0f} KiB ({n / state:.1f}× state)"

    def ms(v: float | None, timeout: float | None = None) -> str:
        if v is None:
            return f"> {timeout:.0f} s (timed out)" if timeout else "—"
        return f"{v:,.0f} ms"

    if not default.get("all_acked"):
        stuck = (
            f"\n\nWith the default thresholds the replay was not acked within "
            f"{default.get('replay_timeout_s')} s ({default.get('acked_when_given_up')} of "
            f"{storage['updates']:,} acked; {default.get('log_rows_when_given_up')} log rows): "
            "the server was busy compacting; no further figures for that database."
        )
    else:
        stuck = ""
    lines = [
        f"Tandem, {storage['trace']} replayed one update per edit "
        f"({storage['updates']:,} updates, {storage['update_bytes'] / 1024:,.0f} KiB); "
        f"merged state `len(Doc.get_update())` = {state / 1024:,.0f} KiB.",
        "",
        "| database | on disk | live pages | rows | ingest (acked) | warm join | cold join |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| log never compacted (killed -9) | {kib(raw.get('db_bytes'))} | "
        f"{kib(raw.get('live_bytes'))} | {raw.get('log_rows')} | "
        f"{_rate(raw.get('ingest_updates_per_s'))} | {ms(raw.get('warm_ms'))} | "
        f"{ms(raw.get('cold_ms'), raw.get('cold_timeout_s'))} |",
        f"| default thresholds, after replay | {kib(default.get('db_bytes_after_replay'))} | "
        f"— | — | {_rate(default.get('ingest_updates_per_s'))} | "
        f"{ms(default.get('warm_ms'))} | — |",
        f"| default thresholds, after SIGTERM compaction "
        f"({default.get('shutdown_seconds')} s) | {kib(default.get('db_bytes_after_shutdown'))} | "
        f"{kib(default.get('live_bytes_after_shutdown'))} | "
        f"{default.get('log_rows_after_shutdown')} | — | — | {ms(default.get('cold_ms'))} |",
    ]
    index = default.get("search_index_bytes_after_shutdown")
    if index:
        lines += [
            "",
            f"Of the compacted database, the search index (its copy of the text, for snippets, "
            f"and its index) holds {kib(index)}.",
        ]
    return "\n".join(lines) + stuck


def _rate(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f} updates/s"


def targets(
    summary: Summary,
    storage: dict[str, Any],
    w1_workloads: list[str],
    w6_workloads: list[str] | None = None,
) -> list[dict]:
    out: list[dict[str, Any]] = []

    def fig(workload: str, server: str, metric: str) -> Any:
        return summary.get(workload, {}).get(server, {}).get(metric)

    def add(name: str, value: float | None, limit: float, met: bool | None) -> None:
        out.append({"target": name, "value": value, "limit": limit, "met": met})

    for w in w1_workloads:
        for metric, how in (("updates_per_s", "updates/s"), ("updates_per_cpu_s", "per CPU-s")):
            t, p, y = (fig(w, s, metric) for s in (TANDEM, PYCRDT, YWS))
            r = round(t / p, 2) if t and p else None
            met = None if r is None else r >= 10
            add(f"{w}: Tandem ≥ 10× pycrdt-websocket ({how})", r, 10, met)
            r = round(t / y, 2) if t and y else None
            add(f"{w}: Tandem ≥ 1.0× y-websocket ({how})", r, 1, None if r is None else r >= 1)
    t, b = fig("W2", TANDEM, "p99_ms"), fig("W2", RELAY, "p99_ms")
    r = round(t / b, 2) if t and b else None
    add("W2: Tandem p99 ≤ 1.5× bare relay p99", r, 1.5, None if r is None else r <= 1.5)
    warm, cold = fig("W3", TANDEM, "warm_ms"), fig("W3", TANDEM, "cold_ms")
    r = round(cold / warm, 2) if warm and cold else None
    add("W3 (seeded): Tandem cold ≤ 2× warm", r, 2, None if r is None else r <= 2)
    warm_one = fig("W3", TANDEM, "warm_whole_doc_in_one_sync")
    cold_one = fig("W3", TANDEM, "cold_whole_doc_in_one_sync")
    one = None if warm_one is None else bool(warm_one and cold_one is not False)
    add("W3: the whole document in one sync step 2", None, 1, one)
    if storage:
        d = storage["default"]
        warm, cold = d.get("warm_ms"), d.get("cold_ms")
        r = round(cold / warm, 2) if warm and cold else None
        add("W3 (replayed log, compacted): cold ≤ 2× warm", r, 2, None if r is None else r <= 2)
        raw = storage["uncompacted"]
        warm, cold = raw.get("warm_ms"), raw.get("cold_ms")
        r = round(cold / warm, 2) if warm and cold else None
        add("W3 (replayed log, uncompacted): cold ≤ 2× warm", r, 2, bool(r and r <= 2))
        size = d.get("db_bytes_after_shutdown")
        r = round(size / storage["merged_state_bytes"], 2) if size else None
        add("W5: compacted db ≤ 2× merged state", r, 2, None if r is None else r <= 2)
    kib = fig("W4", TANDEM, "kib_per_connection")
    add("W4: ≤ 40 KiB per idle connection", kib, 40, None if kib is None else kib <= 40)
    r = _ratio(kib, fig("W4", YWS, "kib_per_connection"))
    add("W4: KiB per idle connection ≤ y-websocket's", r, 1, None if r is None else r <= 1)
    _crowd_targets(fig, add, w6_workloads or [])
    return out


def _ratio(mine: Any, theirs: Any) -> float | None:
    ok = isinstance(mine, int | float) and isinstance(theirs, int | float) and theirs
    return round(mine / theirs, 2) if ok else None


def _crowd_targets(
    fig: Callable[[str, str, str], Any],
    add: Callable[[str, float | None, float, bool | None], None],
    w6_workloads: list[str],
) -> None:
    """Issue #18's targets: against the relay and y-websocket of the same run."""
    for w in w6_workloads:
        if w.endswith(" acks"):
            missing = fig(w, TANDEM, "acks_missing")
            add(f"{w}: every edit acked", missing, 0, None if missing is None else missing == 0)
            continue
        first = w == w6_workloads[0]
        if first:
            r = _ratio(fig(w, TANDEM, "p50_ms"), fig(w, RELAY, "p50_ms"))
            add(f"{w}: Tandem p50 ≤ 1.5× bare relay p50", r, 1.5, None if r is None else r <= 1.5)
        r = _ratio(fig(w, TANDEM, "p99_ms"), fig(w, YWS, "p99_ms"))
        add(f"{w}: Tandem p99 ≤ y-websocket p99", r, 1, None if r is None else r <= 1)
        delivered = fig(w, TANDEM, "all_delivered")
        add(f"{w}: every edit delivered", None, 1, delivered)
        # The issue names no point for these two: checked at every point.
        r = _ratio(
            fig(w, TANDEM, "server_cpu_ms_per_edit"), fig(w, RELAY, "server_cpu_ms_per_edit")
        )
        add(f"{w}: CPU per edit ≤ 1.5× bare relay", r, 1.5, None if r is None else r <= 1.5)
        r = _ratio(
            fig(w, TANDEM, "kib_per_idle_connection"), fig(w, YWS, "kib_per_idle_connection")
        )
        add(f"{w}: KiB per idle connection ≤ y-websocket's", r, 1, None if r is None else r <= 1)


def targets_table(items: list[dict[str, Any]]) -> str:
    lines = ["| target | measured | met |", "| --- | --- | --- |"]
    for t in items:
        value = "—" if t["value"] is None else f"{t['value']}"
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['target']} | {value} | {met} |")
    return "\n".join(lines)

"""How the benchmarks' records read: each record in bench/results/ has a
``kind``, and SECTIONS turns a record of that kind into Markdown. The
benchmarks print their tables with it, and scripts/results_page.py builds
docs/results.md from every record with it, so a figure reads the same in
both places.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any


def mean_sd(values: Sequence[float], digits: int = 3) -> str:
    """``mean ± sd`` of the finite values, saying how many were not."""
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return "undefined"
    sd = statistics.stdev(finite) if len(finite) > 1 else 0.0
    text = f"{statistics.mean(finite):.{digits}f} ± {sd:.{digits}f}"
    return text if len(finite) == len(values) else f"{text} ({len(values) - len(finite)} undefined)"


def duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def machine(environment: dict[str, Any]) -> str:
    """One line: the hardware, the threads, and the versions of the software."""
    if environment.get("gpu"):
        hardware = f"{environment['gpu']} ({environment.get('device')})"
    else:
        hardware = (
            f"{environment.get('cpu', 'CPU')}, {environment.get('cpu_count', '?')} cores, torch threads: {environment.get('threads', '?')}"
        )
    if not environment.get("torch"):
        return f"{hardware}; versions not recorded"
    git = environment.get("git") or {}
    commit = f" at commit {_commit(git)}" if git.get("commit") else ""
    return f"{hardware}; torch {environment.get('torch')}, Python {environment.get('python')}, gankit {environment.get('gankit')}{commit}"


def _commit(git: dict[str, Any]) -> str:
    return git["commit"][:10] + (" with local changes" if git.get("dirty") else "")


def _figure(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _budget(record: dict[str, Any]) -> str:
    """How long each run of a recipe record trained: to the recipe's kimg, or for ``minutes``."""
    runs = record["runs"]
    first = runs[0]
    speed = (
        f"{statistics.median(run['img_per_s'] for run in runs):.0f} img/s, peak memory {max(run['peak_memory_mb'] for run in runs):.0f} MB"
    )
    if record.get("minutes") is not None:
        kimg = [run["kimg"] for run in runs]
        return (
            f"- **budget**: {record['minutes']:g} minutes of training a run, which reached {min(kimg):g}"
            + (f" to {max(kimg):g}" if max(kimg) != min(kimg) else "")
            + f" kimg; {speed}"
        )
    return (
        f"- **budget**: {first['kimg']:g} kimg, {first['g_steps']:,} generator steps; training took "
        f"{duration(statistics.median(run['train_seconds'] for run in runs))} a run (median of {len(runs)}), {speed}"
    )


def recipe_section(record: dict[str, Any]) -> list[str]:
    """A recipe trained as a user would (bench/recipe_results.py): its budget,
    machine, command, sample grid, and each metric's figures over seeds."""
    runs = record["runs"]
    seeds = ", ".join(str(run["seed"]) for run in runs)
    first = runs[0]
    reals = record.get("reals_grid")
    lines = [
        f"### {record['recipe']}",
        "",
        f"![{record['recipe']}: samples of the EMA generator after training, seed {first['seed']}]({record['grid'].removeprefix('docs/')})"
        + (f" ![{record['recipe']}: real images of its data]({reals.removeprefix('docs/')})" if reals else ""),
        "",
        f"- **recipe**: `{record['recipe_file']}`" + (f" with `{' '.join(record['overrides'])}`" if record["overrides"] else ""),
        _budget(record),
        f"- **machine**: {machine(record['environment'])}; measured {record['date']}",
        f"- **command**: `{record['command']}`",
        *([f"- **note**: {record['note']}"] if record.get("note") else []),
        "",
        f"| metric | figure | mean ± sd over seeds {seeds} | per seed |",
        "|---|---|---:|---|",
    ]
    protocols = []
    for metric in sorted({name for run in runs for name in run["metrics"]}):
        scores = [run["metrics"].get(metric, {}) for run in runs]
        for figure in [key for key, value in scores[0].items() if _figure(value)]:
            values = [float(score.get(figure, math.nan)) for score in scores]
            lines.append(f"| {metric} | {figure} | {mean_sd(values)} | {', '.join(f'{value:.4g}' for value in values)} |")
        if scores[0].get("protocol"):
            protocols.append(f"- {metric}: {scores[0]['protocol']}")
    return [*lines, "", *protocols]


def toy2d_section(record: dict[str, Any]) -> list[str]:
    """bench/toy2d.py: mode coverage on the 2D mixtures at a fixed number of generator steps."""
    lines = [
        f"{record['g_steps']} generator steps per run, mode_coverage of the final EMA generator "
        "(2,500 samples, high quality within 3σ of the nearest centre), mean ± sd over seeds.",
        "",
        f"- **machine**: {machine(record['environment'])}; measured {record['date']}",
        f"- **command**: `{record['command']}`",
        *([f"- **note**: {record['note']}"] if record.get("note") else []),
        "",
        "| recipe | runs | modes | all modes | high quality % | KL | s/run |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, runs in record["runs"].items():
        if not runs:
            continue
        full = sum(run["modes"] == run["of_modes"] for run in runs)
        modes = mean_sd([run["modes"] for run in runs], 1) + f" / {int(runs[0]['of_modes'])}"
        quality = mean_sd([100 * run["high_quality"] for run in runs], 1)
        kl = mean_sd([run["kl"] for run in runs], 3)
        seconds = statistics.mean(run["seconds"] for run in runs)
        lines.append(f"| {name} | {len(runs)} | {modes} | {full}/{len(runs)} | {quality} | {kl} | {seconds:.0f} |")
    return lines


def msggan_ablation_section(record: dict[str, Any]) -> list[str]:
    """bench/msggan_ablation.py: SWD of MSG-GAN with each set of multi-scale connections, at equal steps and seeds."""
    runs = record["runs"]
    first = next(run for variant in runs.values() for run in variant)
    levels = [key for key in first if key.startswith("swd_")]
    lines = [
        f"recipes/msggan_shapes.toml at 64x64, {record['kimg']:g} kimg ({int(first['steps'])} steps of each network) per run, "
        f"seeds 0..{record['seeds'] - 1} of each arm, interleaved; SWD x1e3 of the final EMA generator on "
        f"{record['swd_images']} images, mean ± sd over seeds (lower is better).",
        "",
        f"- **machine**: {machine(record['environment'])}; measured {record['date']}",
        f"- **command**: `{record['command']}`",
        *([f"- **note**: {record['note']}"] if record.get("note") else []),
        "",
        "| connections | runs | " + " | ".join(levels) + " | s/run |",
        "|---|---:|" + "---:|" * (len(levels) + 1),
    ]
    for connections, variant in runs.items():
        if variant:
            cells = [mean_sd([run[level] for run in variant], 1) for level in levels]
            seconds = statistics.mean(run["seconds"] for run in variant)
            lines.append(f"| {record['variants'][connections]} | {len(variant)} | " + " | ".join(cells) + f" | {seconds:.0f} |")
    return lines


def spread_table(runs: list[dict[str, Any]], bounds: dict[str, Sequence[Any]]) -> list[str]:
    """Per statistic of an outcome test: min, median and max over runs, the bound, and the run nearest to failing it."""
    lines = ["| statistic | runs | min | median | max | bound | worst run |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name in sorted({key for run in runs for key in run["statistics"]}):
        values = [run["statistics"][name] for run in runs if name in run["statistics"]]
        op, bound = bounds.get(name, ("", math.nan))
        worst = max(values) if op.startswith("<") else min(values)
        lines.append(
            f"| {name} | {len(values)} | {min(values):.4g} | {statistics.median(values):.4g} | {max(values):.4g} | "
            + (f"{op} {bound:g} | {worst:.4g} |" if op else "- | - |")
        )
    return lines


def outcome_spread_section(record: dict[str, Any]) -> list[str]:
    """bench/outcome_spread.py: every outcome test's statistics over seeds and thread counts, next to its bounds."""
    lines: list[str] = []
    for name, outcome in sorted(record["outcomes"].items()):
        runs = outcome["runs"]
        seeds = sorted({run["seed"] for run in runs})
        threads = sorted({run["threads"] for run in runs})
        torches = sorted({run["torch"] for run in runs})
        lines += [
            f"### {name}: `{outcome['test']}`",
            "",
            f"Seeds {seeds[0]}-{seeds[-1]} with {' and '.join(map(str, threads))} threads, torch {', '.join(torches)}, "
            f"{statistics.median(run['seconds'] for run in runs):.0f} s a run (median). Command: `{outcome['command']}`",
            "",
            *spread_table(runs, outcome["bounds"]),
            "",
        ]
    return lines


def throughput_table(variants: dict[str, dict[str, Any]]) -> list[str]:
    """bench/throughput.py's figures per variant: median img/s with every trial's, FLOPs, FLOP/s and peak memory."""
    lines = [
        "| variant | img/s (median) | trials | GFLOP/iteration | achieved TFLOP/s | peak MB |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, result in variants.items():
        if "error" in result:
            lines.append(f"| {name} | failed: {result['error']} | | | | |")
            continue
        trials = ", ".join(f"{rate:.0f}" for rate in result["img_per_s_trials"])
        gflop, tflop_per_s = result["gflop_per_iteration"], result["achieved_tflop_per_s"]
        counted = f"{gflop:.2f} | {tflop_per_s:.4f}" if gflop is not None else "not counted (gradient penalty) | —"
        lines.append(f"| {name} | {result['img_per_s']:.1f} | {trials} | {counted} | {result['peak_memory_mb']:.0f} |")
    return lines


def throughput_section(record: dict[str, Any]) -> list[str]:
    """bench/throughput.py: one recipe's training throughput per variant."""
    return [
        f"### {record['recipe']}",
        "",
        f"- **machine**: {machine(record['environment'])}; measured {record['date']}",
        f"- **command**: `{record['command']}`",
        *([f"- **note**: {record['note']}"] if record.get("note") else []),
        "",
        *throughput_table(record["variants"]),
        "",
    ]


def thread_load_section(record: dict[str, Any]) -> list[str]:
    """bench/thread_load.py: seconds per job with 1 or 2 torch threads, idle and beside one busy process."""
    lines = [
        f"- **command**: `{record['command']}` on {record['cpu_count']} cores; a run stopped at {record['timeout']:g} s shows as >",
        "",
        "| job | threads | idle (s) | beside one busy process (s) |",
        "|---|---:|---:|---:|",
    ]
    cells: dict[tuple[str, int], dict[str, str]] = {}
    for row in record["rows"]:
        stopped = any(not run["passed"] and run["seconds"] >= record["timeout"] for run in row["runs"])
        failed = any(not run["passed"] and run["seconds"] < record["timeout"] for run in row["runs"])
        cell = f"{'>' if stopped else ''}{row['median_seconds']:.0f}{' (failed)' if failed else ''}"
        cells.setdefault((row["job"], row["threads"]), {})[row["load"]] = cell
    for (job, threads), by_load in cells.items():
        lines.append(f"| `{job.rsplit('::', 1)[-1]}` | {threads} | {by_load.get('idle', '')} | {by_load.get('busy', '')} |")
    return [*lines, ""]


def _fid_cell(runs: list[dict[str, Any]], minutes: float, key: str = "fid_ema") -> str:
    values = [entry[key] for run in runs for entry in run["milestones"] if entry["minutes"] == minutes and key in entry]
    if not values:
        return "—"
    return mean_sd(values, 1) if len(values) > 1 else f"{values[0]:.1f}"


def _scored_at(run: dict[str, Any], minutes: float) -> bool:
    return any(entry["minutes"] == minutes and "fid_ema" in entry for entry in run["milestones"])


def _msggan_connections(records: list[dict[str, Any]], milestones: list[float]) -> list[str]:
    """MSG-GAN's claim on CIFAR-10 (bench/msggan_ablation.py --cifar10): its
    CIFAR-10 recipe with every scale into D against its variants, side by side."""
    arms = [record for record in records if record["recipe"].startswith("msggan_cifar10")]
    if len(arms) < 2:
        return []
    lines = [
        "",
        "### MSG-GAN's multi-scale connections on CIFAR-10",
        "",
        "The claim tested (Karnewar & Wang 2020): the connections from every scale of G into D are what let the GAN train "
        "at full resolution without progressive growing; the paper's ablation on 1024x1024 FFHQ is quoted as FID 14.20 "
        "with none and 8.36 with all (`../shared/PAPERS.md`, unverified). The arms are the same recipe, generator and "
        "seeds, the connections set by "
        "`discriminator.connections`, trained and scored as above; FID-5k of the EMA generator per seed.",
        "",
        "| connections | seeds | " + " | ".join(f"FID-5k at {minutes:g} min" for minutes in milestones) + " | per seed, last |",
        "|---|---|" + "---:|" * len(milestones) + "---|",
    ]
    for record in arms:
        variant = record.get("variant", "")
        label = {"": "all scales (MSG-GAN)", "connections-none": "none (the 32x32 image alone)"}.get(variant, variant)
        runs = {seed: run for seed, run in sorted(record["runs"].items()) if any("fid_ema" in entry for entry in run["milestones"])}
        cells = " | ".join(_fid_cell(list(runs.values()), minutes) for minutes in milestones)
        last = ", ".join(
            f"{seed}: {scored[-1]['fid_ema']:.1f} at {scored[-1]['minutes']:g} min"
            for seed, run in runs.items()
            for scored in [[entry for entry in run["milestones"] if "fid_ema" in entry]]
        )
        lines.append(f"| {label} (`{record['recipe']}{'+' + variant if variant else ''}`) | {', '.join(runs) or '—'} | {cells} | {last} |")
    return lines


def cifar10_section(records: list[dict[str, Any]]) -> list[str]:
    """Every CIFAR-10 recipe trained for a time budget (bench/cifar10.py):
    one table of FID-5k at each milestone, the plots, and the sample grids."""
    milestones = sorted({entry["minutes"] for record in records for run in record["runs"].values() for entry in run["milestones"]})
    lines = [
        "Each recipe trained on CIFAR-10's 50,000 training images (the JPEG copy, `../shared/data/cifar10-jpeg.zip`) for a "
        "budget of training minutes (`train.minutes`, resumed from one milestone to the next), on 2 CPU cores, one training "
        "at a time. A piece stops at the end of the tick that crosses its budget, so it trains up to one tick longer "
        "(the tick column: 20 kimg is 1 to 4 minutes at these speeds); the plots put each point at the minutes trained. "
        "FID-5k: 5,000 images of the EMA generator against the 50,000 training images (no mirror copies), the standard "
        "FID Inception, TF1 bilinear resize; mean ± sd over the seeds where there are several. The published figures are "
        "at convergence on GPUs, under their own protocols (StudioGAN and Mimicry: against the test set; "
        "`../shared/PAPERS.md`): context, not comparable.",
        "",
        "| recipe | seeds | " + " | ".join(f"FID-5k at {minutes:g} min" for minutes in milestones)
        + " | kimg reached | tick (kimg) | img/s | peak memory | published (GPU, converged) |",
        "|---|---|" + "---:|" * len(milestones) + "---:|---:|---:|---:|---|",
    ]  # fmt: skip
    unfinished: list[str] = []
    for record in records:
        name = record["recipe"] + (f" + {record['variant']}" if record.get("variant") else "")
        # a seed counts once it is scored at the recipe's last milestone; the others are pieces still going
        final = max((entry["minutes"] for run in record["runs"].values() for entry in run["milestones"]), default=None)
        finished = {seed: run for seed, run in record["runs"].items() if final is not None and _scored_at(run, final)}
        for seed, run in sorted(record["runs"].items()):
            if seed not in finished and run["milestones"]:
                reached = run["milestones"][-1]
                scored = f"FID-5k {reached['fid_ema']:.1f}" if "fid_ema" in reached else "not yet scored"
                unfinished.append(f"`{name}` seed {seed}: trained {reached['minutes']:g} minutes ({reached['kimg']:.0f} kimg), {scored}")
        runs = list(finished.values())
        last = [run["milestones"][-1] for run in runs]
        kimg = mean_sd([entry["kimg"] for entry in last], 0) if len(last) > 1 else f"{last[0]['kimg']:.0f}" if last else "—"
        speed = f"{statistics.median(entry['img_per_s'] for entry in last):.0f}" if last else "—"
        memory = f"{max(entry['peak_memory_mb'] for entry in last):.0f} MB" if last else "—"
        tick_sizes = sorted({entry["tick_kimg"] for run in runs for entry in run["milestones"] if "tick_kimg" in entry})
        ticks = ", ".join(f"{tick:g}" for tick in tick_sizes) or "—"
        cells = " | ".join(_fid_cell(runs, minutes) for minutes in milestones)
        seeds = ", ".join(sorted(finished)) or "—"
        lines.append(f"| `{name}` | {seeds} | {cells} | {kimg} | {ticks} | {speed} | {memory} | {record.get('published') or ''} |")
    if unfinished:
        lines += ["", f"Trainings still under way, left out of the table until scored at their last milestone: {'; '.join(unfinished)}."]
    lines += _msggan_connections(records, milestones)
    lines += ["", "![FID-5k against training minutes, every CIFAR-10 recipe](results/cifar10/fid.png)", ""]
    for record in records:
        grid = record.get("grid")
        if grid:
            label = record["recipe"] + (f"+{record['variant']}" if record.get("variant") else "")
            samples = f"{label}: EMA samples at {grid['minutes']:g} minutes, seed {grid['seed']}"
            plot = f"![{label}: FID-5k against minutes](results/cifar10/{label}-fid.png)"
            lines += [f"{plot} ![{samples}]({grid['file'].removeprefix('docs/')})", ""]
    first = next(iter(records[0]["runs"].values()))
    entries = [entry for record in records for run in record["runs"].values() for entry in run["milestones"]]
    commands = sorted({entry.get("train_command", "") for entry in entries})
    protocols = [entry["fid_ema_protocol"] for entry in first["milestones"] if "fid_ema_protocol" in entry]
    lines += [f"- **machine**: {machine(first.get('environment', {}))}; measured {first.get('date', '?')}"]
    lines += ["- **commands**: " + "; ".join(f"`{command}`" for command in commands if command)]
    if protocols:
        protocol = protocols[-1]
        lines.append(f"- **scoring**: `{protocol['command']}`, {protocol.get('wall_seconds', '?')} s wall time for one FID-5k")
    for record in records:
        for seed, run in sorted(record["runs"].items()):
            if run.get("note"):
                lines.append(f"- **note** ({record['recipe']}, seed {seed}): {run['note']}")
    return lines


def reference_parity_section(record: dict[str, Any]) -> list[str]:
    """gankit against a reference implementation, same networks, data, minutes
    and threads (bench/reference_parity.py): FID-5k and img/s per seed."""
    lines = [
        f"**{record['reference']}** against gankit's `{record['gankit_recipe']}` (the same networks, loss, optimizer and batch), "
        f"{record.get('minutes', 30):g} minutes each on {record.get('threads', '?')} torch threads, one training at a time, seeds "
        "interleaved. Both sides' 5,000 samples are drawn with the generator in eval mode (batch norm's running statistics) and "
        "scored by the same command against CIFAR-10's 50,000 training images. The reference keeps no moving average, so the "
        "ratio compares gankit's raw generator; its EMA generator is shown beside it.",
        "",
        "| seed | reference FID-5k | gankit raw G FID-5k | gankit EMA G FID-5k | reference kimg | gankit kimg "
        "| reference img/s | gankit img/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    columns: dict[str, list[float]] = {"ref": [], "raw": [], "ema": [], "ref_kimg": [], "kimg": [], "ref_speed": [], "speed": []}
    for seed, run in sorted(record["runs"].items()):
        reference, ours = run.get("reference", {}), run.get("gankit", {})
        cells = [reference.get("fid"), ours.get("fid_raw"), ours.get("fid_ema")]
        cells += [reference.get("kimg"), ours.get("kimg"), reference.get("img_per_s"), ours.get("img_per_s")]
        for key, value in zip(columns, cells, strict=True):
            if value is not None:
                columns[key].append(value)
        lines.append(f"| {seed} | " + " | ".join("—" if value is None else f"{value:.1f}" for value in cells) + " |")
    if len(record["runs"]) > 1:
        means = [mean_sd(values, 0 if "speed" in key or "kimg" in key else 1) if values else "—" for key, values in columns.items()]
        lines.append("| mean ± sd | " + " | ".join(means) + " |")
    if columns["ref"] and columns["raw"]:
        ratio = statistics.mean(columns["raw"]) / statistics.mean(columns["ref"])
        lines += ["", f"FID ratio, gankit's raw generator over the reference (means over seeds): **{ratio:.3f}**"]
    lines += _batch_stats_table(record["runs"])
    grids = [
        f"![{side} seed {seed}: the first 64 of its 5,000 samples]({run[side]['grid'].removeprefix('docs/')})"
        for seed, run in sorted(record["runs"].items())
        for side in ("reference", "gankit")
        if "grid" in run.get(side, {})
    ]
    if grids:
        lines += ["", "The first 64 samples of each side (gankit's raw generator), seed by seed:", "", " ".join(grids)]
    env = record.get("environment", {})
    lines += ["", f"- **machine**: {machine({**env, 'threads': record.get('threads')})}; measured {record.get('date', '?')}"]
    commits = [
        f"{side} seed {seed} at {_commit(git)}"
        for seed, run in sorted(record["runs"].items())
        for side in ("reference", "gankit")
        if (git := run.get(side, {}).get("git"))
    ]
    if commits:
        lines.append(f"- **trained from gankit's code**: {'; '.join(commits)}")
    lines.append(f"- **command**: `{record.get('command', '')}`")
    return lines


def _batch_stats_table(runs: dict[str, Any]) -> list[str]:
    """The parity's second reading: both sides' generators again, batch norms
    on each batch's statistics (how main.py draws its own pictures)."""
    pairs = [
        (seed, run["reference"]["fid_batch_stats"], run["gankit"]["fid_raw_batch_stats"])
        for seed, run in sorted(runs.items())
        if "fid_batch_stats" in run.get("reference", {}) and "fid_raw_batch_stats" in run.get("gankit", {})
    ]
    if not pairs:
        return []
    lines = [
        "",
        "The same raw generators drawing with batch norm on each batch's statistics (batches of 64) instead of the running "
        "ones, as a script that never calls `eval()` draws its pictures (pytorch/examples' main.py is one):",
        "",
        "| seed | reference FID-5k | gankit raw G FID-5k | ratio |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {seed} | {reference:.1f} | {ours:.1f} | {ours / reference:.3f} |" for seed, reference, ours in pairs]
    if len(pairs) > 1:
        references, ours = [pair[1] for pair in pairs], [pair[2] for pair in pairs]
        ratio = statistics.mean(ours) / statistics.mean(references)
        lines.append(f"| mean ± sd | {mean_sd(references, 1)} | {mean_sd(ours, 1)} | {ratio:.3f} |")
    return lines


#: kind -> (heading, renderer)
SECTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], list[str]]]] = {
    "recipe": ("Recipes", recipe_section),
    "reference_parity": ("gankit against the reference implementations", reference_parity_section),
    "toy2d": ("Mode coverage on the 2D mixtures", toy2d_section),
    "outcome_spread": ("The spread behind the outcome tests' bounds", outcome_spread_section),
    "throughput": ("Training throughput", throughput_section),
    "msggan_ablation": ("MSG-GAN's multi-scale connections", msggan_ablation_section),
    "thread_load": ("Torch threads on an idle and a busy machine", thread_load_section),
}

#: kinds whose records make one section together: kind -> (heading, renderer of the list)
COMBINED_SECTIONS: dict[str, tuple[str, Callable[[list[dict[str, Any]]], list[str]]]] = {
    "cifar10": ("CIFAR-10 on a CPU", cifar10_section),
}

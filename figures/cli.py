"""``meanfield figure NAME``: registered into the ``meanfield`` command line through the
``meanfield.commands`` entry point; matplotlib is imported only when a figure is made."""

from __future__ import annotations

#: the figures that train networks, and take --mode
TRAINING_FIGURES = ("4", "7")


def register(command):
    c = command("figure", cmd_figure, "make a figure of the paper: PNG, PDF and the Dataset behind it")
    c.add_argument("name", help="1, 2, 3, 4, 5, 6, 7, table5, finite-width, spectrum or dropout")
    c.add_argument("--quick", action="store_true", help="a laptop-sized run (minutes on 2 CPU cores)")
    c.add_argument("--mode", choices=("quick", "cpu", "paper"), default=None,
                   help="Figs 4 and 7: quick (CI, < 2 min), cpu (the paper's depth and optimizer on digits, ~15 min on "
                        "2 cores) or paper (Appendix C on CIFAR-10 from --data-root); default: paper with --data-root, "
                        "else cpu")
    c.add_argument("--weights", choices=("gaussian", "delta-orthogonal"), default=None,
                   help="Figs 4 and 7: the convolutions' initial law (default gaussian, Appendix C)")
    c.add_argument("--out", default="figures_out", help="output folder (default: figures_out)")
    c.add_argument("--from", dest="source", default=None, help="redraw from an existing figNAME.nc")
    c.add_argument("--data", choices=("digits", "cifar10", "cifar-shaped", "synthetic"), default=None,
                   help="training data for Figs 4 and 7 (default: CIFAR-10 with --data-root, else digits)")
    c.add_argument("--data-root", default=None, help="folder with the CIFAR-10 python version")
    c.add_argument("--epochs", type=int, default=None, help="training epochs for Figs 4 and 7 (default: the mode's)")
    c.add_argument("--depth", type=int, default=None, help="network depth (default: the figure's, by mode)")
    c.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    c.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device (default cpu)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_figure(args):
    import os

    from meanfield.cli import UsageError, check_output_folder, require_extra

    import figures

    require_extra("figure", "matplotlib", "figures")
    if args.name not in figures.FIGURES:
        raise UsageError(f"unknown figure {args.name!r}; valid names: {', '.join(figures.FIGURES)}")
    if args.source:
        out = None if args.out == "figures_out" else args.out
        if out is not None:
            check_output_folder(out)
        paths = figures.replot(args.source, out, expected=args.name)
    else:
        for flag, value in (("--mode", args.mode), ("--weights", args.weights)):
            if value is not None and args.name not in TRAINING_FIGURES:
                raise UsageError(f"{flag} applies to the training figures {' and '.join(TRAINING_FIGURES)}; "
                                 f"figure {args.name} does not train")
        check_output_folder(args.out)  # before any computation
        if args.data_root and not os.path.isdir(args.data_root):
            raise ValueError(f"--data-root {args.data_root!r} is not a folder; expected the CIFAR-10 python version "
                             "(cifar-10-batches-py)")
        options = {"seed": args.seed, "device": args.device, "quiet": args.quiet}
        for key in ("data", "data_root", "epochs", "depth", "mode", "weights"):
            if getattr(args, key) is not None:
                options[key] = getattr(args, key)
        if args.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ValueError("--device cuda requested but torch sees no CUDA GPU")
        paths = figures.make(args.name, args.out, quick=args.quick, **options)
    for p in paths.values():
        print(f"wrote {p}")
    return 0

"""The chapter runner's command line: ``rvae list | methods | run | book | pin-outputs``."""
from __future__ import annotations

import argparse
import sys

from rvae.book.chapters import DEVICES, PROFILES, RUNNER_PARAMETERS, all_chapters, parse_assignments
from rvae.errors import RvaeError


def _list(arguments: argparse.Namespace) -> None:
    for chapter in all_chapters():
        print(f"{chapter.name}  {chapter.title}")
        parameters = [p for p in chapter.parameters.values() if p.name not in RUNNER_PARAMETERS]
        width = max((len(f"{p.name}: {p.type_name} = {p.default!r}") for p in parameters), default=0)
        for p in parameters:
            signature = f"{p.name}: {p.type_name} = {p.default!r}"
            valid = f"  valid: {p.valid_text}" if p.valid else ""
            print(f"    {signature:<{width}}  {p.help}{valid}".rstrip())
        print("    quick profile: the defaults above")
        for profile in PROFILES[1:]:
            overrides = chapter.profiles[profile]
            print(f"    {profile} profile: " + (", ".join(f"{k}={v!r}" for k, v in overrides.items())
                                             if overrides else "the same as quick"))
        print()


def _methods(arguments: argparse.Namespace) -> None:
    from rvae.methods import all_methods, get_method

    if arguments.name:
        print(get_method(arguments.name).describe())
        return
    for method in all_methods().values():
        print(method.describe())
        print()


def _run(arguments: argparse.Namespace) -> None:
    from rvae.book.runner import outcome_summary, run_chapter
    from rvae.book.status import write_status_page
    from rvae.book.chapters import book_root

    outcome = run_chapter(arguments.chapter, arguments.profile, parse_assignments(arguments.set),
                          arguments.device, arguments.data_dir, progress=not arguments.no_progress)
    root = book_root()
    write_status_page(root)
    print(f"{outcome.chapter} ({outcome.profile}): {outcome_summary(outcome)}; {outcome.wall_seconds:.0f} s")
    print(f"  executed notebook: {outcome.executed_notebook.relative_to(root)}")
    print(f"  results:           {outcome.result_file.relative_to(root)}")
    if outcome.shown_profile != outcome.profile:
        print(f"  the book still shows the chapter's {outcome.shown_profile} run (the strongest executed copy)")


def _book(arguments: argparse.Namespace) -> None:
    from rvae.book.build import build_book
    build_book(execute=not arguments.no_execute, strict=not arguments.no_strict,
               data_dir=arguments.data_dir, progress=not arguments.no_progress)


def _pin(arguments: argparse.Namespace) -> None:
    from rvae.book.checked_outputs import pin_outputs
    count = pin_outputs(arguments.chapter, from_executed=arguments.from_executed)
    print(f"stored the outputs of {count} checked cell(s) of chapter {arguments.chapter}; other outputs cleared")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rvae", description="Run and build the rvae reproduction book.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="every chapter with its parameters, types and quick defaults")
    listing.set_defaults(handler=_list)

    methods = commands.add_parser("methods", help="every training method with its paper, config fields and parameter groups")
    methods.add_argument("name", nargs="?", help="show only this method")
    methods.set_defaults(handler=_methods)

    run = commands.add_parser("run", help="execute a chapter into book/chapters/ and file its results")
    run.add_argument("chapter", help="chapter name (e.g. 01_elbo_fragility) or number (01)")
    run.add_argument("--profile", choices=PROFILES, default="quick",
                     help="quick: minutes on a CPU, what CI runs (default); full: the book's evidence, at most "
                          "90 minutes on two CPU cores; paper: the papers' settings, for a GPU")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="override one parameter (repeatable); see 'rvae list'")
    run.add_argument("--device", choices=DEVICES, default="cpu", help="where the chapter computes (default cpu)")
    run.add_argument("--data-dir", help="data root (default: $RVAE_DATA, else ~/.cache/rvae/data)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(handler=_run)

    book = commands.add_parser("book", help="execute chapters that lack a current executed copy, then build the HTML book")
    book.add_argument("--no-execute", action="store_true", help="render what is there; execute nothing")
    book.add_argument("--no-strict", action="store_true", help="do not treat Sphinx warnings as errors")
    book.add_argument("--data-dir", help="data root for chapters that must be executed")
    book.add_argument("--no-progress", action="store_true", help="no progress bar")
    book.set_defaults(handler=_book)

    pin = commands.add_parser("pin-outputs", help="(maintainers) store the nbval-checked outputs in a source notebook")
    pin.add_argument("chapter")
    pin.add_argument("--from-executed", action="store_true",
                     help="take the outputs from the chapter's current quick executed copy "
                          "(book/executed/CHAPTER/quick.ipynb) instead of executing it")
    pin.set_defaults(handler=_pin)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        arguments.handler(arguments)
    except RvaeError as error:
        print(f"rvae: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rvae: interrupted; finished files were kept, nothing half-written was", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

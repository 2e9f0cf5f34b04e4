"""Command line: parse, dispatch one library call, print, return an exit code.

Nothing heavy is imported at module level: `mlops-ci --help` must start well before DVC,
pandas or scikit-learn could load, so every handler imports what it needs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from mlops_ci import __version__
from mlops_ci.ci.output import guard_streams, json_for_log
from mlops_ci.project.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SERVICE,
    EXIT_UNEXPECTED,
    ConfigError,
    MlopsCiError,
)

Handler = Callable[[argparse.Namespace], int]


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-C",
        dest="repo",
        default=".",
        metavar="DIR",
        help="run as if started in DIR (the repository); default: the current directory",
    )
    common.add_argument(
        "--run-dir",
        default=".mlops-ci",
        metavar="DIR",
        help="where documents are written, relative to the repository; default: .mlops-ci",
    )
    common.add_argument(
        "--json", action="store_true", help="print the command's JSON document instead of a summary"
    )
    common.add_argument(
        "--traceback", action="store_true", help="show the traceback of an unexpected error"
    )
    return common


def repo_dir(args: argparse.Namespace) -> Path:
    return Path(args.repo).resolve()


def run_dir(args: argparse.Namespace) -> Path:
    path = Path(args.run_dir)
    return path if path.is_absolute() else repo_dir(args) / path


def emit(args: argparse.Namespace, document: dict[str, Any], summary: str) -> None:
    """Print the JSON document with --json, else the human summary."""
    if args.json:
        import json  # lazy, like everything `--help` does not need

        text = json.dumps(document, indent=2, sort_keys=False, default=str)
        sys.stdout.write(json_for_log(text) + "\n")  # same document, nothing to defuse
    else:
        sys.stdout.write(summary.rstrip("\n") + "\n")


def progress_stream(args: argparse.Namespace) -> TextIO:
    """Where a command's progress goes: stderr with --json, so stdout holds only the document."""
    return sys.stderr if args.json else sys.stdout


# --- command handlers: one library call each, then output -------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from mlops_ci.commands import train

    result = train.run_train(
        repo_dir(args),
        run_dir(args),
        pull=args.pull,
        push=args.push,
        overrides=args.set,
        stage_output=progress_stream(args),
    )
    emit(args, result.to_dict(), train.format_stage_table(result))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from mlops_ci.commands import compare

    document = compare.run_compare(
        repo_dir(args), run_dir(args), baseline=args.baseline, target_branch=args.target_branch
    )
    emit(args, document, compare.format_comparison(document))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from mlops_ci.commands.report import run_report
    from mlops_ci.report import format_terminal

    result = run_report(
        repo_dir(args),
        run_dir(args),
        post=args.post,
        output=Path(args.output).resolve() if args.output else None,
        out=progress_stream(args),
        png_limit=png_limit(args),
    )
    emit(args, result.to_dict(), "\n".join([format_terminal(result.report), *result.notes]))
    return EXIT_OK


def cmd_gate(args: argparse.Namespace) -> int:
    from mlops_ci.commands import gate

    result = gate.run_gate(repo_dir(args), run_dir(args), post=args.post, out=progress_stream(args))
    emit(args, result.verdict.to_dict(), result.summary())
    return result.exit_code


def cmd_pr(args: argparse.Namespace) -> int:
    from mlops_ci.commands import pr

    if args.announce:
        notes = pr.announce_pr(
            repo_dir(args),
            run_dir(args),
            out=progress_stream(args),
            failed=args.announce == "failed",
        )
        emit(args, {"announced": notes}, "\n".join(notes))
        return EXIT_OK
    result = pr.run_pr(
        repo_dir(args),
        run_dir(args),
        pull=args.pull,
        push=args.push,
        overrides=args.set,
        baseline=args.baseline,
        target_branch=args.target_branch,
        post=not args.no_post,
        out=progress_stream(args),
        png_limit=png_limit(args),
    )
    emit(args, result.to_dict(), result.summary())
    return result.exit_code


def cmd_promote(args: argparse.Namespace) -> int:
    from mlops_ci.commands import promote

    result = promote.promote(repo_dir(args), run_dir(args), stage=args.stage, push=args.push)
    emit(args, result.to_dict(), result.summary())
    return EXIT_OK


def cmd_deploy(args: argparse.Namespace) -> int:
    from mlops_ci.commands import deploy

    if args.from_tag:
        return _deploy_from_tag(args)
    if args.override:
        raise ConfigError("--override goes with --from-tag (a deploy started by a registry tag)")
    result = deploy.deploy(
        repo_dir(args),
        run_dir(args),
        target=args.target,
        version=args.version,
        out=progress_stream(args),
    )
    emit(args, result.to_dict(), result.summary())
    return EXIT_SERVICE if result.record_error else EXIT_OK


def _deploy_from_tag(args: argparse.Namespace) -> int:
    from mlops_ci.commands import tag_deploy

    if args.version:
        raise ConfigError("--from-tag deploys what the tag's stage holds: drop --version")
    result = tag_deploy.deploy_from_tag(
        repo_dir(args),
        run_dir(args),
        args.from_tag,
        override=args.override,
        target=args.target,
        out=progress_stream(args),
    )
    emit(args, result.to_dict(), result.summary())
    return EXIT_SERVICE if any(d.get("record_error") for d in result.deployed) else EXIT_OK


def cmd_deprecate(args: argparse.Namespace) -> int:
    from mlops_ci.commands import deprecate

    result = deprecate.deprecate(
        repo_dir(args), run_dir(args), version=args.version, stage=args.stage, push=args.push
    )
    emit(args, result.to_dict(), result.summary())
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    from mlops_ci.commands import rollback

    result = rollback.rollback(
        repo_dir(args),
        run_dir(args),
        stage=args.stage,
        target=args.target,
        push=args.push,
        out=progress_stream(args),
    )
    emit(args, result.to_dict(), result.summary())
    return EXIT_SERVICE if result.deployment.record_error else EXIT_OK


def cmd_publish(args: argparse.Namespace) -> int:
    from mlops_ci.commands import publish

    result = publish.publish_run(
        run_dir(args),
        repo_dir=repo_dir(args),
        sha=args.sha,
        post=not args.no_post,
        output=Path(args.output) if args.output else None,
    )
    emit(args, result.to_dict(), result.summary())
    return EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    from mlops_ci.commands import review

    result = review.run_review(repo_dir(args), run_dir(args))
    emit(args, result.to_dict(), result.summary())
    return result.exit_code


def _review_options(p: argparse.ArgumentParser) -> None:
    """No options: the comment, the pull request and the head come from the event and the API."""


def cmd_sweep(args: argparse.Namespace) -> int:
    from mlops_ci.commands import sweep

    if args.action == "plan":
        document = sweep.run_plan(repo_dir(args), run_dir(args))
        lines = [f"{c['id']}: {' '.join(c['set'])}" for c in document["candidates"]]
        emit(args, document, "\n".join(lines))
        return EXIT_OK
    if args.action == "run":
        if not args.candidate:
            raise ConfigError("`mlops-ci sweep run` needs --candidate ID (from `sweep plan`)")
        document = sweep.run_candidate(
            repo_dir(args), run_dir(args), args.candidate, pull=args.pull, out=progress_stream(args)
        )
        emit(args, document, f"candidate {args.candidate} trained and compared in {run_dir(args)}")
        return EXIT_OK
    result = sweep.collect(
        repo_dir(args),
        run_dir(args),
        [Path(p) for p in args.dirs] or [run_dir(args) / "sweep"],
        post=args.post,
        out=progress_stream(args),
    )
    emit(args, result.leaderboard, result.summary())
    return result.exit_code


def cmd_retrain(args: argparse.Namespace) -> int:
    from mlops_ci.commands import retrain

    result = retrain.run_retrain(
        repo_dir(args),
        run_dir(args),
        reproduce_only=args.reproduce_only,
        publish=args.publish,
        pull=args.pull,
        push=args.push,
        out=progress_stream(args),
    )
    emit(args, result.to_dict(), result.summary())
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from mlops_ci.commands import demo

    return demo.run_demo(Path(args.workdir) if args.workdir else None, out=sys.stdout, main=main)


def cmd_init(args: argparse.Namespace) -> int:
    from mlops_ci.commands import init

    result = init.run_init(
        repo_dir(args),
        forge=args.forge,
        force=args.force,
        model=args.model,
        predictions=args.predictions,
        test_data=args.test_data,
    )
    emit(args, result.to_dict(), result.summary())
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from mlops_ci.commands import validate

    result = validate.run_validate(repo_dir(args))
    if args.json:
        emit(args, result.to_dict(), "")
    else:
        stream = sys.stderr if result.problems else sys.stdout
        stream.write(result.summary() + "\n")
    return result.exit_code


def cmd_noise(args: argparse.Namespace) -> int:
    from mlops_ci.commands import noise

    result = noise.run_noise(
        repo_dir(args), run_dir(args), repeat=args.repeat, stages=args.stage or None
    )
    emit(args, result.to_dict(), result.summary())
    return EXIT_OK


def _noise_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--repeat",
        type=int,
        required=True,
        metavar="N",
        help="re-run each stage that writes a metrics file N more times, inputs unchanged",
    )
    p.add_argument(
        "--stage",
        action="append",
        default=[],
        metavar="NAME",
        help="only this stage (repeatable); default: every stage that writes a metrics file",
    )


def _train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pull",
        action="store_true",
        help="fetch the run-cache and outputs from the DVC remote so unchanged stages are restored",
    )
    p.add_argument(
        "--push", action="store_true", help="push outputs and the run-cache to the DVC remote"
    )
    p.add_argument(
        "--set",
        "-S",
        action="append",
        default=[],
        metavar="[FILE:]KEY=VALUE",
        help="change a param before reproducing, as `dvc exp run -S` (repeatable); "
        "FILE defaults to params.yaml",
    )


def _compare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--baseline",
        metavar="SPEC",
        help="merge-base (default), base (tip of the target branch), stage:NAME (the version in "
        "a registry stage) or a git ref; default: `baseline:` in mlops-ci.yaml",
    )
    p.add_argument(
        "--target-branch",
        metavar="BRANCH",
        help="the branch the change goes into; default: the pull request's base, else "
        "`target_branch:` in mlops-ci.yaml (main)",
    )


def _report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--post",
        action="store_true",
        help="create or update the sticky report comment on the pull/merge request",
    )
    p.add_argument("--output", metavar="FILE", help="also write the full markdown report to FILE")
    _png_option(p)


def _png_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--png",
        nargs="?",
        type=int,
        const=20,
        metavar="N",
        help="also draw the plots as PNG files under <run-dir>/plots/, at most N (default 20); "
        "needs the `charts` extra; about 0.1 s per plot. Default: MLOPS_CI_PNG (a number), else "
        "none",
    )


def png_limit(args: argparse.Namespace) -> int:
    """--png N, else MLOPS_CI_PNG (how CI settings ask for PNGs without editing a job), else 0."""
    if args.png is not None:
        return max(0, args.png)
    raw = os.environ.get("MLOPS_CI_PNG", "").strip()
    if not raw:
        return 0
    if not raw.isdigit():
        raise ConfigError(f"MLOPS_CI_PNG must be a number of plots (e.g. 20), not {raw[:40]!r}")
    return int(raw)


def _gate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--post",
        action="store_true",
        help="set the commit status mlops-ci/<artifact> on the pull request's head commit "
        "(and a check run where the forge allows)",
    )


def _pr_options(p: argparse.ArgumentParser) -> None:
    _train_options(p)
    _compare_options(p)
    p.add_argument(
        "--no-post",
        action="store_true",
        help="write the documents and the report only; post no comment and no status",
    )
    p.add_argument(
        "--announce",
        nargs="?",
        const="started",
        choices=("started", "failed"),
        help='only post the status `pending` and an "in progress" comment, then exit: the '
        "step before training in a workflow, which alone gets the token (runs no stage); "
        "`--announce failed`: the status `error` and a comment saying the run stopped before "
        "it could report",
    )
    _png_option(p)


def _promote_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stage",
        metavar="S",
        help="stage to assign (one of promote.stages); default: promote.auto of mlops-ci.yaml",
    )
    p.add_argument(
        "--push",
        action="store_true",
        help="push the tags to origin, re-fetching and retrying when another runner won a race",
    )


def _deploy_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target",
        metavar="URL",
        help="a directory, an fsspec URL (s3://bucket/prefix) or command:PROGRAM ARGS; "
        "default: deploy.target of mlops-ci.yaml, else deployments/",
    )
    p.add_argument(
        "--version",
        metavar="V",
        help="registered version to deploy (vX.Y.Z); default: the version at HEAD",
    )
    p.add_argument(
        "--from-tag",
        metavar="TAG",
        help="a pushed GTO tag (name#stage#N, name@vX.Y.Z...): deploy what its stage now holds, "
        "if that commit is on the default branch and its version records a passing verdict",
    )
    p.add_argument(
        "--override",
        metavar="REASON",
        help="with --from-tag: deploy even without a recorded passing verdict; REASON is "
        "recorded in deployment.json and the forge's deployment",
    )


def _rollback_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stage",
        metavar="S",
        help="stage to give back to its previous version; default: promote.auto of mlops-ci.yaml",
    )
    p.add_argument("--target", metavar="URL", help="deploy target, as for `mlops-ci deploy`")
    p.add_argument("--push", action="store_true", help="push the new stage tags to origin")


def _deprecate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stage",
        metavar="S",
        help="unassign the version in stage S (name#S!#N); with --version, that version",
    )
    p.add_argument(
        "--version",
        metavar="V",
        help="without --stage: deregister V (name@V!); neither: deprecate the artifact "
        "(name@deprecated)",
    )
    p.add_argument("--push", action="store_true", help="push the new tag to origin")


def _publish_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sha",
        metavar="SHA",
        help="head commit of the triggering run (workflow_run.head_sha); the status goes there "
        "and the run directory's ci.json must agree",
    )
    p.add_argument("--no-post", action="store_true", help="validate and render only; post nothing")
    p.add_argument("--output", metavar="FILE", help="also write the full markdown report to FILE")


def _sweep_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=("plan", "run", "collect"),
        help="plan: candidates as a CI matrix; run: one candidate; collect: rank and post",
    )
    p.add_argument("--candidate", metavar="ID", help="run: the candidate id from the plan")
    p.add_argument(
        "--pull",
        action="store_true",
        help="run: restore unchanged stages from the shared DVC remote's run-cache",
    )
    p.add_argument(
        "--post", action="store_true", help="collect: post the leaderboard comment and the status"
    )
    p.add_argument(
        "--from",
        dest="dirs",
        action="append",
        default=[],
        metavar="DIR",
        help="collect: a candidate's run directory, or a folder of them (repeatable); "
        "default: <run-dir>/sweep",
    )


def _retrain_options(p: argparse.ArgumentParser) -> None:
    half = p.add_mutually_exclusive_group()
    half.add_argument(
        "--reproduce-only",
        action="store_true",
        help="the half without a token: refresh the imports (dvc update), reproduce, compare "
        "with the target branch; commit a change to the retrain branch and write "
        "retrain.json and retrain.bundle into the run directory",
    )
    half.add_argument(
        "--publish",
        action="store_true",
        help="the trusted half, which runs no repository code: push the commit of a "
        "--reproduce-only run (with a lease on the branch tip) and open or update its pull request",
    )
    p.add_argument(
        "--pull",
        action="store_true",
        help="fetch the run-cache and outputs from the DVC remote before reproducing",
    )
    p.add_argument(
        "--push",
        action="store_true",
        help="push outputs and the run-cache to the DVC remote after reproducing, so the pull "
        "request's own run restores them",
    )


def _demo_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workdir",
        metavar="DIR",
        help="where to create the scratch repository; default: a new temporary directory",
    )


def _init_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--forge",
        choices=("github", "gitlab"),
        help="which CI files to write; default: from the `origin` remote's URL, else github",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="rewrite the CI files init writes when they exist with other content "
        "(mlops-ci.yaml is always merged, your keys kept; a .gitlab-ci.yml init did not "
        "write is never replaced)",
    )
    for option, what in (
        ("--model", "the model file a deploy ships (inside a directory output too)"),
        ("--predictions", "the per-sample predictions table (id, y_true, y_pred)"),
        ("--test-data", "the rows a deploy verifies the model on"),
    ):
        p.add_argument(option, metavar="PATH", help=f"{what}: set in mlops-ci.yaml")


def _validate_options(p: argparse.ArgumentParser) -> None:
    del p  # only the common options


# name, help, handler, options: one row per public command (the names are public: keep them).
COMMANDS: list[tuple[str, str, Handler, Callable[[argparse.ArgumentParser], None]]] = [
    ("train", "reproduce the pipeline, reusing DVC's run-cache", cmd_train, _train_options),
    (
        "noise",
        "measure run-to-run noise on request: re-run the stages writing metrics (noise.json)",
        cmd_noise,
        _noise_options,
    ),
    (
        "compare",
        "put the candidate's metrics, params and plots beside the baseline's",
        cmd_compare,
        _compare_options,
    ),
    (
        "report",
        "render the report; job summary; --post: sticky PR comment",
        cmd_report,
        _report_options,
    ),
    (
        "gate",
        "apply the policy (read at the baseline); --post: commit status",
        cmd_gate,
        _gate_options,
    ),
    (
        "pr",
        "train + compare + gate + report, then post once (what a PR workflow runs)",
        cmd_pr,
        _pr_options,
    ),
    (
        "promote",
        "register the commit as a version and assign a stage (GTO tags)",
        cmd_promote,
        _promote_options,
    ),
    (
        "deploy",
        "bundle a version, deploy it, verify it at the target, switch and record",
        cmd_deploy,
        _deploy_options,
    ),
    (
        "rollback",
        "give a stage back to its previous version (new tags) and redeploy it",
        cmd_rollback,
        _rollback_options,
    ),
    (
        "deprecate",
        "GTO's deprecation: unassign a stage, deregister a version or deprecate the artifact",
        cmd_deprecate,
        _deprecate_options,
    ),
    (
        "publish",
        "validate a run directory from an untrusted (fork) job, render it anew, post it",
        cmd_publish,
        _publish_options,
    ),
    (
        "review",
        "act on a review command on a pull request (/mlops-ci accept <metric or rule> <reason>)",
        cmd_review,
        _review_options,
    ),
    (
        "sweep",
        "fan candidates out on the CI matrix (plan, run) and rank them in one report (collect)",
        cmd_sweep,
        _sweep_options,
    ),
    (
        "retrain",
        "refresh imported data, reproduce, and open or update one pull request with the change",
        cmd_retrain,
        _retrain_options,
    ),
    (
        "demo",
        "run the whole flow on a scratch repository with the local forge",
        cmd_demo,
        _demo_options,
    ),
    (
        "init",
        "adopt mlops-ci in an existing DVC repository: mlops-ci.yaml, CI files, .gitignore",
        cmd_init,
        _init_options,
    ),
    (
        "validate",
        "check mlops-ci.yaml against its schema and the repository (metrics, outputs, files)",
        cmd_validate,
        _validate_options,
    ),
]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with `only` a known command's parser alone: the one a run
    uses parses the same, without building the thirty others (5-10 ms)."""
    parser = argparse.ArgumentParser(
        prog="mlops-ci",
        description="GitOps CI/CD for machine learning on DVC pipelines: train, compare "
        "against the baseline, report on the pull request, gate, promote and deploy.",
    )
    parser.add_argument("--version", action="version", version=f"mlops-ci {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common_options()
    for name, help_text, handler, add_options in COMMANDS:
        if only is not None and name != only:
            continue
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        add_options(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    argv = sys.argv[1:] if argv is None else list(argv)
    named = argv[0] if argv and argv[0] in {c[0] for c in COMMANDS} else None
    parser = build_parser(only=named)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_OK
    # Repo text (metric names, branches, subjects) reaches the log: in GitHub Actions no line of
    # it may form a workflow command (`::add-mask::`, `##[stop-commands]`...).
    with guard_streams():
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return args.handler(args)
    except MlopsCiError as exc:
        print(f"mlops-ci {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mlops-ci: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        from mlops_ci.ci.documents import ENVIRONMENT_ERRNOS

        if exc.errno not in ENVIRONMENT_ERRNOS:
            return _unexpected(args, exc)
        # A write no `documents.writing` wrapped (a summary file, a bundle): the machine's
        # refusal, not a bug.
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"mlops-ci {args.command}: error: cannot write{where}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_SERVICE
    except Exception as exc:
        return _unexpected(args, exc)


def _unexpected(args: argparse.Namespace, exc: BaseException) -> int:
    if args.traceback:
        import traceback

        traceback.print_exc()
    print(
        f"mlops-ci {args.command}: unexpected error: {type(exc).__name__}: {exc}\n"
        "This is a bug in mlops-ci; please report it with the output of the same command "
        "rerun with --traceback.",
        file=sys.stderr,
    )
    return EXIT_UNEXPECTED


def entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry()

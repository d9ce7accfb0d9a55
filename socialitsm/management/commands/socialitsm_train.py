"""Train the complaint model: the shipped one from public data we may use, or a local one that
also learns from agents' labels."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm  # type: ignore[import-untyped]

from socialitsm.classify import model, train
from socialitsm.conf import conf
from socialitsm.models import Post
from socialitsm.services.routing import post_meaning

SHIPPED_COMMAND = "manage.py socialitsm_train --shipped"


class Command(BaseCommand):
    help = (
        "Train the complaint model from TweetEval and VADER tweets (SOCIALITSM_DATA_DIR), our own IT posts, "
        "the train split of the labelled workplace-IT corpus "
        "and, unless --shipped or --no-feedback, every post an agent labelled; writes SOCIALITSM_MODEL_PATH, "
        "which workers load within seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", type=Path, help="folder of the public data sets (default SOCIALITSM_DATA_DIR)")
        parser.add_argument("--output", type=Path, help="model file to write (default SOCIALITSM_MODEL_PATH)")
        parser.add_argument(
            "--shipped",
            action="store_true",
            help=f"rebuild the model shipped in the package ({model.SHIPPED_PATH.name}), without agents' labels",
        )
        parser.add_argument("--no-feedback", action="store_true", help="leave agents' labels out")
        parser.add_argument("--no-public", action="store_true", help="train on our own posts and labels only")

    def handle(self, *args: Any, **options: Any) -> None:
        shipped = options["shipped"]
        if shipped and (options["output"] or options["no_feedback"] or options["no_public"]):
            raise CommandError("--shipped writes the packaged model from fixed data; it takes only --data")
        output: Path = model.SHIPPED_PATH if shipped else (options["output"] or _default_output())
        examples = [] if options["no_public"] else self._public(options["data"])
        examples += train.own_examples()
        try:
            examples += train.corpus_examples("train")
        except (OSError, train.CorpusError) as exc:
            raise CommandError(f"cannot read the labelled corpus under {train.CORPUS} ({exc})") from exc
        if not (shipped or options["no_feedback"]):
            examples += feedback_examples()
        flags = [flag for flag in ("--no-public", "--no-feedback") if options[flag[2:].replace("-", "_")]]
        command = SHIPPED_COMMAND if shipped else shlex.join(["manage.py", "socialitsm_train", *flags])
        self.stderr.style_func = None  # a progress bar, not an error
        with tqdm(total=len(examples), unit="post", disable=None, file=self.stderr) as bar:
            try:
                meta = train.train(
                    examples, output, command=command, progress=bar.update, stage=bar.set_description_str
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        counts = ", ".join(f"{name} {sum(per.values())}" for name, per in sorted(meta["examples"].items()))
        self.stdout.write(f"trained on {len(examples)} posts ({counts}); wrote {output}")

    def _public(self, data: Path | None) -> list[train.Example]:
        folder = data or Path(conf.DATA_DIR)
        try:
            return train.public_examples(folder)
        except (OSError, KeyError) as exc:
            message = f"cannot read the public training data under {folder} ({exc}); pass --data, or --no-public"
            raise CommandError(message) from exc


def feedback_examples() -> list[train.Example]:
    """Every post an agent labelled, weighted above the public data, read as routing reads it
    (its text with the posts it quotes and its image descriptions)."""
    posts = Post.objects.exclude(label="").order_by("id").only("text", "details", "label", "language")
    weight = train.WEIGHTS["feedback"]
    return [
        train.Example(
            post_meaning(post), int(post.label == Post.Label.COMPLAINT), "feedback", weight, post.language or None
        )
        for post in posts.iterator()
    ]


def _default_output() -> Path:
    if not conf.MODEL_PATH:
        raise CommandError("set SOCIALITSM_MODEL_PATH or pass --output")
    return Path(conf.MODEL_PATH)

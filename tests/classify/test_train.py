"""Training: run-time scores equal training-time scores, reproducible files, learning from agents."""

from __future__ import annotations

import csv
import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from socialitsm.classify import model, train, verdict, verdict_many
from socialitsm.classify.catalogue import matcher_for
from socialitsm.classify.model import active, load
from socialitsm.classify.pipeline import head_matrix, prepare_many, understand
from socialitsm.models import Post
from socialitsm.services.routing import catalogue_load, post_label

from ..factories import PostFactory

TEXT = "the team lunch is on friday at noon"


@pytest.fixture
def own() -> list[train.Example]:
    return train.own_examples()


@pytest.fixture
def retrained(tmp_path, settings):
    """SOCIALITSM_MODEL_PATH in a temporary folder, and the active model forgotten around the test."""
    path = tmp_path / "var" / "classify-model.npz"
    settings.SOCIALITSM_MODEL_PATH = str(path)
    active.reset()
    yield path
    active.reset()


def test_run_time_scores_equal_training_time_scores(own, tmp_path):
    path = tmp_path / "m.npz"
    train.train(own, path)
    texts = [e.text for e in own[:40]] + ["", "😡", TEXT]
    fitted = load(path)
    corpus = train.featurise(texts)
    expected = train.Fitted(_arrays(path))

    prepared = prepare_many(texts, matcher_for(()))
    fast = fitted.score(prepared.grams, prepared.dense).logits
    head, _ = fitted.head.score(head_matrix(prepared, understand(prepared.posts, ()), fast))

    np.testing.assert_allclose(fast, expected.fast_logits(corpus), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(head, expected.logits(corpus), rtol=1e-4, atol=1e-4)


def _arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files if name != "meta"}


def test_training_is_reproducible_byte_for_byte(own, tmp_path):
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"

    train.train(own, first, command="x")
    train.train(own, second, command="x")

    assert first.read_bytes() == second.read_bytes()
    meta = load(first).meta
    assert meta["examples"] == {"own": {"complaint": 188, "not_complaint": 163}}
    assert (meta["seed"], meta["c"], meta["min_df"], meta["command"]) == (train.SEED, train.C, train.MIN_DF, "x")


def test_training_needs_both_classes(tmp_path):
    examples = [train.Example("VPN down", 1, "own"), train.Example("Outlook down", 1, "own")]

    with pytest.raises(ValueError, match="both classes"):
        train.train(examples, tmp_path / "m.npz")


def test_cross_validation_scores_every_post_out_of_fold(own):
    corpus = train.featurise([e.text for e in own])
    labels = np.array([e.label for e in own])
    folds = np.arange(len(own)) % 3

    probabilities = train.cross_validate(corpus, labels, folds)

    assert probabilities.shape == (len(own),)
    assert ((probabilities > 0) & (probabilities < 1)).all()
    # Even out of fold, our own IT posts are mostly told apart.
    assert ((probabilities >= 0.5) == labels).mean() > 0.7


def test_shipped_option_refuses_other_outputs(tmp_path):
    with pytest.raises(CommandError, match="takes only --data"):
        call_command("socialitsm_train", "--shipped", "--output", str(tmp_path / "x.npz"))


def test_train_command_reports_unreadable_public_data(tmp_path, retrained, db):
    with pytest.raises(CommandError, match="cannot read the public training data"):
        call_command("socialitsm_train", "--data", str(tmp_path / "nowhere"), stdout=StringIO(), stderr=StringIO())


def _trained(retrained, **counts: int) -> str:
    counts = {name: count for name, count in counts.items() if count}
    listed = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
    return f"trained on {sum(counts.values())} posts ({listed}); wrote {retrained}\n"


def test_agents_labels_change_a_retrained_model(retrained, agent, own):
    catalogue = catalogue_load()[1]
    corpus = len(train.corpus_examples("train"))
    out = StringIO()
    call_command("socialitsm_train", "--no-public", stdout=out, stderr=StringIO())
    assert out.getvalue() == _trained(retrained, own=len(own), corpus=corpus)
    before = verdict(TEXT, "en", catalogue=catalogue)
    assert not before.is_complaint

    # Agents say posts about the team lunch are complaints (say, it is a known pain point).
    for i in range(12):
        post = PostFactory(external_id=f"fb-{i}", text=f"{TEXT} #{i}")
        post_label(post=post, label=Post.Label.COMPLAINT, actor=agent)
    out = StringIO()
    call_command("socialitsm_train", "--no-public", stdout=out, stderr=StringIO())
    assert out.getvalue() == _trained(retrained, own=len(own), corpus=corpus, feedback=12)
    active.reset()  # as a worker does once RELOAD_CHECK_SECONDS have passed

    after = verdict(TEXT, "en", catalogue=catalogue)
    assert after.is_complaint
    assert after.score > before.score + 0.3
    assert any(reason.startswith("word 'lunch'") or reason.startswith("word 'noon'") for reason in after.reasons)
    assert load(retrained).meta["examples"]["feedback"] == {"complaint": 12, "not_complaint": 0}


def test_workers_pick_up_a_new_model_file(retrained, own, monkeypatch):
    monkeypatch.setattr(model, "RELOAD_CHECK_SECONDS", 0.0)
    shipped = verdict(TEXT).score
    train.train([*own, *(train.Example(f"{TEXT} {i}", 1, "feedback", 5.0) for i in range(12))], retrained)

    assert verdict(TEXT).score != shipped
    assert load(retrained).meta["examples"]["feedback"]["complaint"] == 12

    retrained.unlink()
    assert verdict(TEXT).score == shipped


def test_classify_command_writes_one_json_object_per_line(db):
    lines = ["VPN down again, third time this week", "", "Merci, tout fonctionne à nouveau", "Outlok keeps crashing"]
    out = StringIO()

    call_command("socialitsm_classify", "--lang", "en", stdin=StringIO("\n".join(lines) + "\n"), stdout=out)

    records = [json.loads(line) for line in out.getvalue().splitlines()]
    expected = verdict_many([(line, "en") for line in lines], catalogue=catalogue_load()[1])
    assert records == [
        {
            "is_complaint": v.is_complaint,
            "score": round(v.score, 4),
            "sentiment": round(v.sentiment, 4),
            "service": v.service,
            "urgency": v.urgency,
            "reasons": list(v.reasons),
        }
        for v in expected
    ]
    assert [(r["is_complaint"], r["service"]) for r in records] == [
        (True, "vpn"),
        (False, None),
        (False, None),
        (True, "email"),
    ]


def test_classify_command_threshold_and_escaped_newlines(db):
    out = StringIO()

    call_command(
        "socialitsm_classify", "--threshold", "0.0", stdin=StringIO("Anyone up for lunch?\\nAt noon?\n"), stdout=out
    )

    (record,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert record["is_complaint"] is True
    # The command reads the catalogue, which the score depends on (similarity to its services).
    assert record["score"] == round(verdict("Anyone up for lunch?\nAt noon?", catalogue=catalogue_load()[1]).score, 4)


def test_classify_command_without_catalogue_needs_no_database():
    out = StringIO()

    call_command("socialitsm_classify", "--no-catalogue", stdin=StringIO("Outlook is down\n"), stdout=out)

    assert json.loads(out.getvalue())["service"] is None


def test_own_posts_are_well_formed():
    with train.OWN_POSTS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))

    assert {row["lang"] for row in rows} == {"en", "fr", "de", "es"}
    assert {row["label"] for row in rows} == {"0", "1"}
    assert len({row["text"] for row in rows}) == len(rows)


@pytest.mark.django_db
def test_agents_labels_train_on_what_routing_reads():
    from socialitsm.management.commands.socialitsm_train import feedback_examples
    from socialitsm.models import Post

    from ..factories import PostFactory

    details = [
        {"kind": "quote", "text": "VPN down for everyone", "url": "https://social.example.com/@ops/7"},
        {"kind": "poll", "text": "Works here", "url": ""},
        {"kind": "alt_text", "text": "Screenshot: error 809", "url": ""},
    ]
    PostFactory(text="this, again", details=details, label=Post.Label.COMPLAINT, language="en")
    PostFactory(text="lunch?", label=Post.Label.NOT_COMPLAINT, language="")
    PostFactory(text="not labelled")
    assert [(e.text, e.label, e.source, e.lang) for e in feedback_examples()] == [
        ("this, again\n\nVPN down for everyone\n\nScreenshot: error 809", 1, "feedback", "en"),
        ("lunch?", 0, "feedback", None),
    ]


def test_each_factor_learns_only_what_a_post_tells_it():
    posts = [
        train.Example("VPN down again", 1, "corpus", 5.0, "en", "vpn", "outage"),
        train.Example("Thanks IT, all fixed", 0, "corpus", 5.0, "en", None, "praise"),
        train.Example("Rain again on the way in", 0, "corpus", 5.0, "en", None, "offtopic_weather_commute"),
        train.Example("awful day", 1, "vader", 1.0, "en"),
        train.Example("not what I asked for", 0, "feedback", 5.0, "en"),
    ]

    targets = train.head_targets(posts)

    assert targets.complaint[0].tolist() == [1, 0, 0, 1, 0]
    assert targets.complaint[1].tolist() == [5.0, 5.0, 0.0, 1.0, 0.0]
    assert targets.relevance[0].tolist() == [1, 1, 0, 0, 0]
    assert targets.relevance[1].tolist() == [5.0, 5.0, 5.0, train.PUBLIC_HEAD_WEIGHT, 0.0]
    assert targets.decision[0].tolist() == [1, 0, 0, 0, 0]
    assert targets.decision[1].tolist() == [5.0, 5.0, 5.0, train.PUBLIC_HEAD_WEIGHT, 5.0]


def _public_data(folder):
    """The smallest public data folder the training command reads (two tweets of each set)."""
    (folder / "tweeteval-sentiment").mkdir(parents=True)
    (folder / "vader-tweets-hutto2014").mkdir()
    (folder / "tweeteval-sentiment" / "val.csv").write_text(
        "text,label,label_name,split\nawful day,0,negative,val\nnice day,2,positive,val\n", encoding="utf-8"
    )
    (folder / "vader-tweets-hutto2014" / "tweets.csv").write_text(
        "text,label,mean_rating,id\nso sad,negative,-2.1,1\nso glad,positive,2.3,2\n", encoding="utf-8"
    )
    return folder


def test_shipped_training_and_its_tuning_see_no_eval_post(tmp_path, monkeypatch):
    given = []
    monkeypatch.setattr(train, "train", lambda examples, output, **kwargs: given.extend(examples) or {"examples": {}})

    call_command("socialitsm_train", "--shipped", "--data", str(_public_data(tmp_path)), stdout=StringIO())

    texts = [e.text for e in given]
    held_out = {e.text for e in train.corpus_examples("eval")}
    assert len(held_out) > 800
    assert held_out.isdisjoint(texts)
    assert [e.text for e in given if e.source == "corpus"] == [e.text for e in train.corpus_examples("train")]
    assert sorted({e.source for e in given}) == ["corpus", "own", "tweeteval", "vader"]
    # The tuner scores the decision of the posts labelled for it, all of them training posts.
    scored = train.head_targets(given).scored
    assert scored is not None
    assert {e.source for e, chosen in zip(given, scored, strict=True) if chosen} == {"corpus", "own"}


def test_head_regularisation_is_chosen_by_cross_validation_and_recorded(own, tmp_path):
    path = tmp_path / "m.npz"

    meta = train.train(own, path)

    tuning = load(path).meta["head_tuning"]
    assert tuning == meta["head_tuning"]
    assert tuning["folds"] == train.TUNING_FOLDS
    assert tuning["posts"] == len(own)
    assert list(tuning["macro_f1"]) == [repr(c) for c in train.HEAD_C_GRID]
    best = max(tuning["macro_f1"].values())
    assert tuning["head_c"] == min(c for c in train.HEAD_C_GRID if tuning["macro_f1"][repr(c)] == best)
    assert meta["head_c"] == tuning["head_c"]


def test_tuning_scores_only_the_posts_labelled_for_the_decision():
    rng = np.random.default_rng(0)
    scaled = rng.normal(size=(120, len(model.HEAD_FEATURES)))
    # One dimension of the encoder's vector, which both factors read, decides the label.
    column = model.HEAD_FEATURES.index("encoder_0")
    scaled[:, column] *= 4
    labels = (scaled[:, column] > 0).astype(np.int64)
    plain = (labels, np.ones(120))
    scored = np.arange(120) < 90

    tuning = train.tune_head(scaled, train.Targets(plain, plain, plain, scored), grid=(0.0001, 1.0), folds=3)

    assert tuning.posts == 90
    assert list(tuning.scores) == [0.0001, 1.0]
    assert min(tuning.scores.values()) > 0.8
    assert tuning.head_c == (1.0 if tuning.scores[1.0] > tuning.scores[0.0001] else 0.0001)

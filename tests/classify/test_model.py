"""The trained model: hashing, scoring, reasons, model files and hostile input."""

from __future__ import annotations

import re

import numpy as np
import pytest

from socialitsm.classify import ServiceEntry, verdict, verdict_many
from socialitsm.classify.features import BUCKETS, grams
from socialitsm.classify.model import SHIPPED_PATH, ModelError, active, load
from socialitsm.classify.sentiment import polarities

CATALOGUE = (
    ServiceEntry("vpn", ("VPN", "GlobalProtect")),
    ServiceEntry("email", ("Email", "Outlook")),
)


def test_word_buckets_are_fixed_across_batches_and_processes():
    alone = grams(["vpn"])
    among = grams(["printer is down", "my vpn is down"])

    # Pinned: a change to the hashing would silently invalidate every trained model file.
    assert alone.words.bucket.tolist() == [476_818]
    assert among.words.bucket[among.words.token == 4].tolist()[0] == 476_818
    assert among.chars.bucket.min() >= 0 and among.chars.bucket.max() < BUCKETS


def test_tokens_split_words_punctuation_and_emoji():
    batch = grams(["can't log in :( 😡", "", "écran cassé"])

    words = [batch.joined[start:end] for start, end in batch.spans.tolist()]
    assert words == ["can't", "log", "in", ":", "(", "😡", "écran", "cassé"]
    assert batch.token_doc.tolist() == [0, 0, 0, 0, 0, 0, 2, 2]
    # The empty post has neither words nor character n-grams.
    assert 1 not in batch.words.doc.tolist() and 1 not in batch.chars.doc.tolist()


def test_lexicon_polarity_flips_after_a_negator():
    mood = polarities(grams(["the new laptop is great", "the new laptop is not great", "the laptop"]))

    assert mood.vader[0] > 0.3 and mood.textblob[0] > 0.3
    assert mood.vader[1] < 0 and mood.textblob[1] < 0
    assert (mood.vader[2], mood.textblob[2], mood.sentiment[2]) == (0.0, 0.0, 0.0)


def test_reasons_name_words_cues_and_service():
    result = verdict("Outlook keeps crashing, useless", "en", catalogue=CATALOGUE)

    assert result.is_complaint
    assert result.reasons[-1] == "service email: 'Outlook'"
    assert "outage word 'keeps crashing'" in result.reasons
    assert "frustration 'useless'" in result.reasons
    # A word already named as a cue is not named twice.
    assert "word 'useless'" not in result.reasons


def test_reasons_of_a_non_complaint_point_the_other_way():
    result = verdict("Thanks IT, the VPN works again, great job 👍", "en", catalogue=CATALOGUE)

    assert not result.is_complaint
    assert "positive cue 'thanks'" in result.reasons
    assert not any(reason.startswith("outage") for reason in result.reasons)


TEN_KB = ("Quarterly numbers look fine. " * 400)[:10_000]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", False),
        ("   ", False),
        ("😡😡😡", True),
        ("🎉🎉", False),
        (TEN_KB, False),
        (TEN_KB[:9_000] + " the VPN is down again, nobody can work", None),
        ("VPN не работает 😡 VPN 壊れた، لا يعمل", True),
        ("<div><b>Outlook</b> &amp; <script>alert(1)</script> is down</div><br/>", True),
        ("@ITSupport @helpdesk https://status.example.com/x?y=1", None),
        ("@ITSupport the VPN is down https://status.example.com", True),
    ],
)
def test_edge_cases(text, complaint):
    result = verdict(text, "en", catalogue=CATALOGUE)

    assert 0.0 <= result.score <= 1.0
    assert -1.0 <= result.sentiment <= 1.0
    assert result.reasons and all(len(reason) < 120 for reason in result.reasons)
    if complaint is not None:
        assert result.is_complaint is complaint
    assert "<" not in "".join(result.reasons)


def test_long_posts_are_cut_before_scoring():
    result = verdict(TEN_KB[:9_000] + " the VPN is down again, nobody can work", "en", catalogue=CATALOGUE)

    # Past the 2,000 analysed characters: the complaint at the end is not seen.
    assert result.service is None
    assert not result.is_complaint


def test_batch_scores_equal_single_scores_whatever_the_neighbours():
    texts = ["VPN down again", "", "😡", "Merci, tout fonctionne", "Outlook keeps crashing " * 50]

    alone = [verdict(text, catalogue=CATALOGUE) for text in texts]
    together = verdict_many([(text, None) for text in texts], catalogue=CATALOGUE)
    reversed_order = verdict_many([(text, None) for text in reversed(texts)], catalogue=CATALOGUE)

    assert together == alone
    assert list(reversed(reversed_order)) == alone


def test_shipped_model_loads_and_is_small():
    model = load(SHIPPED_PATH)

    assert SHIPPED_PATH.stat().st_size < 5_000_000
    assert model.meta["command"] == "manage.py socialitsm_train --shipped"
    assert set(model.meta["examples"]) == {"tweeteval", "vader", "own", "corpus"}
    assert model.meta["head_sources"] == ["corpus", "feedback", "own"]
    assert np.isfinite(model.dense).all()


def test_a_broken_model_file_is_refused(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip")

    with pytest.raises(ModelError, match="not a readable model"):
        load(path)


def test_a_broken_retrained_model_keeps_the_current_one(tmp_path, settings):
    path = tmp_path / "model.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    settings.SOCIALITSM_MODEL_PATH = str(path)
    active.reset()

    try:
        result = verdict("VPN down again")
        assert result.is_complaint
        assert active.error is not None and "not a readable model" in active.error
    finally:
        active.reset()


@pytest.mark.parametrize(
    ("text", "lang", "english"),
    [
        ("Wann ist die nächste Schulung?", None, False),  # German "die" is not dying
        ("Wann ist die nächste Schulung?", "de-AT", False),
        ("I love this laptop", None, True),
        ("I love this laptop", "en_GB", True),
        ("I love this laptop", "und", True),
        ("I love this laptop", "fr", False),
        ("super, le VPN ne marche plus", None, False),
        ("¿Por qué el VPN no funciona otra vez?", None, False),
    ],
)
def test_english_lexicons_apply_to_english_posts_only(text, lang, english):
    mood = polarities(grams([text.lower()]), [lang])

    assert bool(mood.vader[0] != 0) is english
    assert bool(mood.textblob[0] != 0) is english


def test_vader_rules_kept_but_emphasis_and_emoji():
    texts = ["the laptop is good", "the laptop is good!!", "the laptop is good but the screen is bad", "😂", "😠"]

    vader = polarities(grams(texts), ["en"] * len(texts)).vader.tolist()

    # Same valences and rules as VADER: good 1.9, bad -2.5, "!" adds 0.292 each, "but" halves
    # what comes before and adds half to what comes after; an emoji counts as its description.
    assert vader[0] == pytest.approx(1.9 / (1.9**2 + 15) ** 0.5, abs=1e-4)
    assert vader[1] == pytest.approx(2.484 / (2.484**2 + 15) ** 0.5, abs=1e-4)
    assert vader[2] == pytest.approx(-2.8 / (2.8**2 + 15) ** 0.5, abs=1e-4)
    assert vader[3] > 0 > vader[4]


def test_static_vectors_put_related_words_near_each_other():
    from socialitsm.classify.embedding import embed

    slow, laggy, lunch, empty = embed(["the vpn is slow", "the vpn is laggy", "lunch at noon", ""])

    assert float(slow @ laggy) > float(slow @ lunch) + 0.2
    assert float(np.linalg.norm(slow)) == pytest.approx(1.0, abs=1e-5)
    assert not empty.any()


def test_word_pieces_follow_bert_uncased():
    from socialitsm.classify.embedding import _pieces, _table

    vocab = {i: piece for piece, i in _table().ids.items()}

    assert [vocab[i] for i in _pieces("café")] == [vocab[i] for i in _pieces("cafe")]
    first, *rest = (vocab[i] for i in _pieces("unreachable"))
    assert first == "un"
    assert rest and all(piece.startswith("##") for piece in rest)
    assert _pieces("x" * 101) == ()


def test_mentioned_accounts_are_kept_apart_as_words():
    from socialitsm.classify.text import normalise

    clean = normalise("@ITSupport @mika_k VPN down https://x.example/1")

    assert (clean.text, clean.handles, clean.mentions, clean.urls) == ("VPN down", "it support mika k", True, True)


def test_sentence_vectors_do_not_depend_on_the_word_cache(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from socialitsm.classify import embedding

    posts = [f"vpn {i} down again, can't log in to outlook #fail {'é' * (i % 3)}" for i in range(300)]
    expected = embedding.embed(posts)
    # A tiny cache is thrown away and refilled many times, also while other threads read it.
    monkeypatch.setattr(embedding, "_WORD_CACHE", 5)
    monkeypatch.setattr(embedding, "_words", embedding._WordVectors())
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda chunk: embedding.embed(posts[chunk : chunk + 30]), range(0, 300, 30)))

    np.testing.assert_allclose(np.concatenate(results), expected, atol=1e-5)
    assert not embedding.embed([""]).any()
    assert embedding.embed([]).shape == (0, embedding.DIMENSIONS)


def test_cues_are_found_exactly_where_a_word_boundary_allows():
    # The cue scan tries matches only where a word starts; that is the same as \b only while
    # every cue begins with a word character. A cue like "#fail" or ":(" would break it.
    from socialitsm.classify import rules

    patterns = [*(part for parts in rules._WORD_CUES.values() for part in parts), *rules._URGENCY_CUES]
    for pattern in patterns:
        assert _starts_with_word_character(re._parser.parse(pattern)), f"cue {pattern!r} can start otherwise"
    assert not _starts_with_word_character(re._parser.parse("(?:#|x)fail"))
    text = "(vpn down) again!! can't log in.#outage, 3rd time — whole floor; :( status 503"
    for compiled in (rules._WORDS, rules._URGENCY):
        reference = re.compile(r"\b" + compiled.pattern.removeprefix(r"(?<!\w)(?=\w)"))
        assert [m.span() for m in compiled.finditer(text)] == [m.span() for m in reference.finditer(text)]
        assert compiled.search(text)


def _starts_with_word_character(parsed: re._parser.SubPattern) -> bool:
    """Whether every way of matching the parsed pattern starts with a word character."""
    from re import _constants as c

    def wordy(kind: object, value: object) -> bool:
        if kind is c.CATEGORY:
            return value in (c.CATEGORY_WORD, c.CATEGORY_DIGIT)
        if kind is c.LITERAL:
            return chr(value).isalnum()  # type: ignore[arg-type]
        if kind is c.RANGE:
            return all(chr(v).isalnum() for v in value)  # type: ignore[attr-defined]
        return False

    op, arg = parsed[0]
    if op is c.LITERAL:
        return wordy(op, arg)
    if op is c.IN:
        return all(wordy(kind, value) for kind, value in arg)
    if op is c.SUBPATTERN:
        return _starts_with_word_character(arg[-1])
    if op is c.BRANCH:
        return all(_starts_with_word_character(branch) for branch in arg[1])
    if op in (c.MAX_REPEAT, c.MIN_REPEAT) and arg[0] >= 1:
        return _starts_with_word_character(arg[2])
    return False

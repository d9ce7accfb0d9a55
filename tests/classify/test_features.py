from __future__ import annotations

import numpy as np

from socialitsm.classify import features
from socialitsm.classify.features import grams


def _buckets(batch: features.Batch, doc: int) -> list[int]:
    words = batch.words.bucket[batch.words.doc == doc]
    chars = batch.chars.bucket[batch.chars.doc == doc]
    return sorted(np.concatenate((words, chars)).tolist())


def test_a_post_hashes_the_same_in_a_batch_too_long_for_the_kept_tables():
    post = "vpn down again, third time this week"
    # Over a million characters: the hash tables for this batch are computed, not kept.
    long_posts = ["x" * 300_000] * 4
    alone = grams([post])
    among = grams([*long_posts, post])

    assert sum(len(text) + 2 for text in long_posts) > features._CACHED_CAPACITY
    assert _buckets(among, len(long_posts)) == _buckets(alone, 0)


def test_long_batches_leave_no_tables_behind():
    features._power_table.cache_clear()
    grams(["short post"])
    grams(["y" * 2_000_000])

    # Only the short post's table stays; the two-million-character batch's went with it.
    assert features._power_table.cache_info().currsize == 1

"""The load-factor tables (tracer/native/loadfactor.py): the classic map reproduces Go 1.19's map.go table."""

import math

import pytest

from tracer_native import require_native

require_native()

from gctrace.tracer.native.loadfactor import MAPGO_TABLE, classic_rows, occupancy_rows, swiss_rows  # noqa: E402


@pytest.fixture(scope="module")
def classic():
    return classic_rows(B=16, seeds=(1, 2))


def test_classic_table_within_5_percent_of_map_go(classic):
    # GIVEN maximally loaded tables of 2^16 buckets at every loadFactor of map.go's table
    assert [r["loadFactor"] for r in classic] == list(MAPGO_TABLE)
    # THEN %overflow, bytes/entry, hitprobe and missprobe are each within 5% of Go's measurement
    for r in classic:
        got = (r["overflow_pct"], r["bytes_per_entry"], r["hitprobe"], r["missprobe"])
        for g, want, name in zip(got, r["mapgo"], ("%overflow", "bytes/entry", "hitprobe", "missprobe")):
            assert abs(g - want) <= 0.05 * want, (r["loadFactor"], name, g, want)


def test_classic_probes_follow_the_poisson_mean(classic):
    # a uniform hash puts Poisson(lf) entries on a chain: a miss checks lf of them, a hit 1 + lf/2
    for r in classic:
        assert r["missprobe"] == pytest.approx(r["loadFactor"], rel=0.01)
        assert r["hitprobe"] == pytest.approx(1 + r["loadFactor"] / 2, rel=0.01)


@pytest.mark.parametrize("lf", [6.5, 3.25])
def test_bucket_occupancy_matches_a_uniform_hash(lf):
    rows, info = occupancy_rows(lf=lf, B=16)
    nb = 1 << info["B"]
    assert sum(r["buckets"] for r in rows) == nb
    for r in rows:
        p = r["binomial_pct"] / 100
        sigma = math.sqrt(nb * p * (1 - p))
        assert abs(r["buckets"] - nb * p) <= 4 * sigma + 1, r


def test_swiss_table_rows():
    rows = swiss_rows(maps=16)
    assert [r["entries"] for r in rows] == [512, 640, 768, 896]
    for r, eighths in zip(rows, (4, 5, 6, 7)):
        # every slot is in some group: slots used a group is exactly 8 x the load
        assert r["slots_per_group"] == pytest.approx(eighths)
        # a lookup probes at least one group; a miss must reach a group with an empty slot
        assert 1 <= r["hit_groups"] <= r["miss_groups"]
        # a hit compares its own key at least; H2 false positives are 1/128 a full slot probed
        assert r["hit_cmps"] >= 1 and r["miss_cmps"] < 1
        assert r["miss_cmps"] == pytest.approx(r["miss_groups"] * eighths / 128, rel=0.25)
    assert [r["miss_groups"] for r in rows] == sorted(r["miss_groups"] for r in rows)
    # at 7/8 the groups array (18,432 B for 1024 slots) dominates: 18432/896 = 20.6 B a entry
    assert rows[-1]["bytes_per_entry"] == pytest.approx((18432 + 32 + 8 + 48) / 896, rel=0.01)

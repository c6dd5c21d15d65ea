"""What a build tells its operator about where it ran: how the generation was sharded, and on
a cluster which node parsed and embedded how much (the numbers come from real builds in
tests/indexer/cluster/test_cluster_build.py; here, how they are said)."""

from __future__ import annotations

from indexer.report import BuildReport


def test_the_summary_says_how_the_build_was_sharded_and_where_its_stages_ran() -> None:
    report = BuildReport(corpus="c", index="i", generation="g", shards=2, cluster={
        "address": "10.0.0.5:6379", "nodes": 2, "cpus": 32.0, "gpus": 0}, stages={
        "parse": {"on": "ray", "actors": 32, "nodes": {"10.0.0.5 (0f3c9a1e)": 7,
                                                       "10.0.0.6 (77aa01bb)": 3}},
        "embed": {"on": "ray", "actors": 16, "nodes": {"10.0.0.6 (77aa01bb)": 256}}})
    lines = report.summary_lines()
    assert "  shards: 2 (by document; `serve --ray` serves each)" in lines
    assert lines[-1] == (
        "  on the Ray cluster at 10.0.0.5:6379 (2 node(s), 32 CPUs): parse 32 actor(s) on "
        "10.0.0.5 (0f3c9a1e) 7 files, 10.0.0.6 (77aa01bb) 3 files; embed 16 actor(s) on "
        "10.0.0.6 (77aa01bb) 256 texts")
    assert report.as_dict()["shards"] == 2


def test_a_local_unsharded_build_says_neither() -> None:
    lines = BuildReport(corpus="c", index="i", generation="g").summary_lines()
    assert not [line for line in lines if "shards" in line or "Ray" in line]

"""Followers against the real broker and a local snapshot server."""

import asyncio

import pytest
from aiohttp import web

from turnout_common.broker import Producer, ensure_topics
from turnout_common.devinfra import free_port
from turnout_common.events import ConfigEvent
from turnout_common.follow import ConfigFollower, TopicFollower, fetch_snapshot
from turnout_common.settings import KafkaSettings
from turnout_common.testing.servers import LocalServer
from turnout_common.testing.waiting import wait_until
from turnout_common.topics import CONFIG, Topic


async def test_topic_follower_reads_from_beginning(
    kafka_settings: KafkaSettings, unique_topic: str
) -> None:
    await ensure_topics(kafka_settings, [Topic(unique_topic, 2, True, "t")])
    producer = Producer(kafka_settings)
    await producer.start()
    seen: list[tuple[bytes | None, bytes | None]] = []
    try:
        await producer.send(unique_topic, b"v1", key=b"a")
        await producer.send(unique_topic, None, key=b"b")
        follower = TopicFollower(kafka_settings, unique_topic, lambda k, v: seen.append((k, v)))
        await follower.start()
        follower.start_background()
        await wait_until(lambda: len(seen) == 2)
        await producer.send(unique_topic, b"v2", key=b"a")
        await wait_until(lambda: len(seen) == 3)
        await follower.stop()
    finally:
        await producer.stop()
    assert (b"a", b"v1") in seen and (b"b", None) in seen and seen[-1] == (b"a", b"v2")


async def test_topic_follower_takes_on_partitions_of_a_re_created_topic(
    kafka_settings: KafkaSettings, unique_topic: str
) -> None:
    """The topic is deleted and comes back with three partitions (as after a broker that
    lost its log, where the first producer auto-creates it with the broker's default)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    await ensure_topics(kafka_settings, [Topic(unique_topic, 1, True, "t")])
    producer = Producer(kafka_settings)
    await producer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap)
    await admin.start()
    seen: list[bytes | None] = []
    follower = TopicFollower(
        kafka_settings, unique_topic, lambda k, v: seen.append(v), metadata_max_age_ms=300
    )
    try:
        await producer.send(unique_topic, b"before", key=b"a")
        await follower.start()
        follower.start_background()
        await wait_until(lambda: seen == [b"before"])

        await admin.delete_topics([unique_topic])
        await asyncio.sleep(0.2)
        await admin.create_topics([NewTopic(unique_topic, 3, 1)])
        after = [f"p{p}".encode() for p in range(3)]
        fresh = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap)
        await fresh.start()
        try:
            for p, value in enumerate(after):
                await fresh.send_and_wait(unique_topic, value, key=b"k", partition=p)
        finally:
            await fresh.stop()
        await wait_until(lambda: set(after) <= set(seen), timeout=20)
    finally:
        await follower.stop()
        await admin.close()
        await producer.stop()
    # the first record of the re-created partition 0 sits at the follower's old position - 1:
    # only a re-read from the beginning finds it
    assert seen[0] == b"before" and sorted(seen[1:]) == after


async def test_config_follower_bootstraps_then_follows(kafka_settings: KafkaSettings) -> None:
    await ensure_topics(kafka_settings, [CONFIG])
    producer = Producer(kafka_settings)
    await producer.start()
    old = ConfigEvent(revision=1, entity="user", entity_id="old", op="upsert", data={"x": 1})
    await producer.send(CONFIG.name, old.to_bytes(), key=old.key.encode())
    tokens: list[str] = []

    async def snapshot(request: web.Request) -> web.Response:
        tokens.append(request.headers["Authorization"])
        return web.json_response(
            {
                "revision": 5,
                "entities": [
                    {
                        "revision": 5,
                        "entity": "user",
                        "entity_id": "alice",
                        "op": "upsert",
                        "data": {"tier": "free"},
                    }
                ],
            }
        )

    app = web.Application()
    app.router.add_get("/api/v1/snapshot", snapshot)
    got: list[ConfigEvent] = []
    with LocalServer(app) as srv:
        follower = ConfigFollower(kafka_settings, srv.url, "tok", got.append)
        await follower.start()
        assert follower.snapshot_revision == 5
        new = ConfigEvent(revision=6, entity="user", entity_id="bob", op="upsert", data={})
        await producer.send(CONFIG.name, new.to_bytes(), key=new.key.encode())
        await wait_until(lambda: any(e.entity_id == "bob" for e in got))
        await follower.stop()
    await producer.stop()
    assert tokens == ["Bearer tok"]
    ids = [e.entity_id for e in got]
    assert ids[0] == "alice" and "bob" in ids and "old" not in ids


async def test_snapshot_retries_within_its_time_budget() -> None:
    calls: list[int] = []

    async def snapshot(_: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) < 3:
            return web.json_response({"error": "starting"}, status=503)
        return web.json_response({"revision": 1, "entities": []})

    app = web.Application()
    app.router.add_get("/api/v1/snapshot", snapshot)
    with LocalServer(app) as srv:
        assert await fetch_snapshot(srv.url, "tok", timeout_s=5, delay=0.01) == {
            "revision": 1,
            "entities": [],
        }
        assert len(calls) == 3
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(RuntimeError, match=r"within 0\.5s"):
        await fetch_snapshot(f"http://127.0.0.1:{free_port()}", "tok", timeout_s=0.5, delay=0.05)
    assert 0.4 < loop.time() - started < 3


async def test_config_follower_stops_its_consumer_when_the_snapshot_fails(
    kafka_settings: KafkaSettings,
) -> None:
    await ensure_topics(kafka_settings, [CONFIG])
    url = f"http://127.0.0.1:{free_port()}"
    follower = ConfigFollower(kafka_settings, url, "tok", print, snapshot_timeout_s=0.3)
    with pytest.raises(RuntimeError, match="config snapshot"):
        await follower.start()
    assert follower._follower._consumer is None

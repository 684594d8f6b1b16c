"""The meter's async Redis client: commands packed by hiredis (as redis-py's
sync client does) reach Redis intact — scripts, pipelines, every value type
the meter sends."""

from __future__ import annotations

import asyncio
import os

import hiredis
import redis.asyncio as aioredis

from usage import redis_client


def test_async_connections_pack_commands_with_hiredis():
    async def packed():
        client = redis_client.async_redis()
        connection = client.connection_pool.make_connection()
        return connection, connection.pack_command(*command)

    command = ("EVALSHA", "ab", 1, "k", 60, 1.5, b"raw")
    connection, packed_command = asyncio.run(packed())
    assert isinstance(connection, aioredis.Connection)  # still the class the URL chose
    assert isinstance(connection, redis_client._HiredisPacking)
    assert packed_command == [hiredis.pack_command(command)]


def test_scripts_and_pipelines_round_trip_through_the_packer():
    key = f"tg:test:packer:{os.urandom(4).hex()}"

    async def run():
        client = redis_client.async_redis()
        echoed = await client.eval(
            "return {KEYS[1], ARGV[1], ARGV[2], ARGV[3]}", 1, key, 42, "é ünïcode", b"\x00\xff"
        )
        async with client.pipeline(transaction=False) as pipe:
            pipe.incrby(key, 7)
            pipe.expire(key, 30)
            pipe.get(key)
            results = await pipe.execute()
        await client.delete(key)
        return echoed, results

    echoed, results = asyncio.run(run())
    assert echoed == [key.encode(), b"42", "é ünïcode".encode(), b"\x00\xff"]
    assert results == [7, True, b"7"]

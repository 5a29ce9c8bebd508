"""The producer every service shares: started lazily, used by the outbox relay and the consumer
runner (dead letters). Its own module so `outbox.py` and `kafka.py` both import it and not each other."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer


class ProducerHandle:
    """Starts the producer lazily, so a service boots (and intake keeps accepting submissions)
    while the broker is down. No idempotence: Tansu does not support it, and the inbox makes
    redelivery harmless anyway."""

    def __init__(self, bootstrap: str, client_id: str) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    client_id=self.client_id,
                    acks="all",
                    enable_idempotence=False,
                    linger_ms=2,
                    request_timeout_ms=10_000,
                    max_batch_size=1_048_576,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
        return self._producer

    async def reachable(self, timeout: float = 2.0) -> bool:
        try:
            producer = await asyncio.wait_for(self.get(), timeout)
            return bool(await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout))
        except Exception:
            return False

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

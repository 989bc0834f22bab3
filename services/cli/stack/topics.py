"""Create the registry's topics on a broker, under a deployment prefix."""

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from contracts.topics import ALL_TOPICS, Topic

logger = logging.getLogger(__name__)


def new_topics(prefix: str, topics: Iterable[Topic] = ALL_TOPICS) -> list[NewTopic]:
    """The admin-client requests for the registry's topics under `prefix` (one replica)."""
    return [
        NewTopic(
            name=topic.physical(prefix),
            num_partitions=topic.partitions,
            replication_factor=1,
            topic_configs=dict(topic.config),
        )
        for topic in topics
    ]


async def ensure_topics(
    bootstrap_servers: str,
    prefix: str,
    topics: Iterable[Topic] = ALL_TOPICS,
    timeout_ms: int = 30_000,
) -> list[str]:
    """Create every missing topic under `prefix`; return the physical names that now exist."""
    wanted = new_topics(prefix, topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            response = await admin.create_topics(missing, timeout_ms=timeout_ms)
            for name, code, *_ in response.topic_errors:
                # 36 = TOPIC_ALREADY_EXISTS: a concurrent creator won the race, which is fine.
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise RuntimeError(f"could not create topic {name}: error code {code}")
            logger.info("topics created", extra={"prefix": prefix, "count": len(missing)})
        return [topic.name for topic in wanted]
    finally:
        await admin.close()


async def delete_topics(bootstrap_servers: str, names: Iterable[str]) -> None:
    """Delete the named topics (a test session cleaning up after itself)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics(list(names))
    finally:
        await admin.close()

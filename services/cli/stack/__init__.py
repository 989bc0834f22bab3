"""The local stack without Docker: Kafka, PostgreSQL and every service process."""

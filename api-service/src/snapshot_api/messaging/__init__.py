"""RabbitMQ: the broker connection, the outbox relay and the status consumers."""

from celery import shared_task


@shared_task
def ping(message: str = "") -> str:
    """Health task: proves a worker consumes from the broker."""
    return f"pong: {message}"

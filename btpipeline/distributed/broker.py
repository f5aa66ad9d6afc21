"""Where the Celery broker and result backend are: environment variables read when used.

Both the workers (``celery_app``) and the Dagster run (``job``'s executor) read the same two
variables, so one ``export`` on every machine points the whole deployment at one broker.
RabbitMQ is the default broker: it honours message priorities the way dagster-celery assumes
(higher number first; Redis's transport inverts them). ``rpc://`` is
the default result backend: results travel back over the broker to the run that sent the
task, so no second service (nor the ``redis`` client package) is needed.
"""

import importlib.util
import os
from urllib.parse import urlsplit, urlunsplit

from kombu import Connection
from kombu.exceptions import ChannelError

from btpipeline.errors import BrokerUnreachable

BROKER_ENV = "BTPIPELINE_CELERY_BROKER"
BACKEND_ENV = "BTPIPELINE_CELERY_BACKEND"
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_BACKEND = "rpc://"


def broker_url() -> str:
    """The broker URL, ``$BTPIPELINE_CELERY_BROKER`` else local RabbitMQ."""
    return os.environ.get(BROKER_ENV) or DEFAULT_BROKER


def backend_url() -> str:
    """The result backend URL, ``$BTPIPELINE_CELERY_BACKEND`` else ``rpc://``."""
    return os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and error messages)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_reachable(url: str, env_var: str, role: str = "broker", timeout_s: float = 3.0) -> None:
    """Connect once to ``url``; raise :class:`BrokerUnreachable` naming it and ``env_var``.

    ``rpc://`` needs no check of its own (it rides on the broker connection).
    """
    if url.startswith("rpc://"):
        return
    example = DEFAULT_BROKER if env_var == BROKER_ENV else DEFAULT_BACKEND
    if url.startswith(("redis://", "rediss://")) and importlib.util.find_spec("redis") is None:
        raise BrokerUnreachable(role, redact(url), env_var, "the redis Python package is not "
                                "installed: pip install 'dagster-celery[redis]'", example)
    try:
        with Connection(url, connect_timeout=timeout_s) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
    except Exception as error:  # kombu raises many types; all mean "not usable"
        reason = f"{type(error).__name__}: {str(error).strip() or 'no answer'}"
        raise BrokerUnreachable(role, redact(url), env_var, reason, example) from error


def consumer_count(url: str, queue: str, timeout_s: float = 3.0) -> int | None:
    """How many workers consume ``queue`` now (AMQP brokers only; None when unknown).

    A queue nobody has declared yet has no consumer: 0.
    """
    if not url.startswith(("amqp://", "amqps://", "pyamqp://")):
        return None
    try:
        with Connection(url, connect_timeout=timeout_s) as conn:
            _, _, consumers = conn.default_channel.queue_declare(queue=queue, passive=True)
            return int(consumers)
    except ChannelError as error:  # 404 NOT_FOUND: no worker ever declared it
        return 0 if getattr(error, "code", None) == 404 else None
    except Exception:  # unknown: the run goes on and the broker check reports real outages
        return None

"""The collector: the aiohttp server many developers' proxies ship to (auth, limits,
ingestion into the store). Imports the store; nothing in ``core/`` or ``adapters/`` imports it.
"""

from .batch import MAX_BODY_BYTES, MAX_EVENTS, ParsedBatch, decode_body, parse_batch
from .run import serve
from .server import EVENTS_SUFFIX, RETRY_AFTER_S, Collector
from .tokens import (
    TOKEN_PREFIX,
    TOKENS_FILENAME,
    TokenBook,
    TokenFileError,
    add_token,
    bearer_token,
    token_names,
)

__all__ = [
    "EVENTS_SUFFIX",
    "MAX_BODY_BYTES",
    "MAX_EVENTS",
    "RETRY_AFTER_S",
    "TOKENS_FILENAME",
    "TOKEN_PREFIX",
    "Collector",
    "ParsedBatch",
    "TokenBook",
    "TokenFileError",
    "add_token",
    "bearer_token",
    "decode_body",
    "parse_batch",
    "serve",
    "token_names",
]
